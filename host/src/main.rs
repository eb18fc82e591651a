fn main() {
    std::process::exit(checkallsslcerts::run());
}
