//! Fetching a module and its signature: a local file, or an `https://` URL.
//!
//! Every read is bounded: a file larger than the limit is refused from its size, a download
//! whose `Content-Length` is larger is refused before its body is read, and any other body is
//! read at most one byte past the limit. HTTPS goes through reqwest with OpenSSL (native-tls),
//! the system's trust store plus an optional extra CA bundle (`--ca-file`), connect and
//! overall timeouts, at most five redirects and never a redirect to plain HTTP; the user agent,
//! the CA bundle and the proxy (from the environment, never for loopback) are set by
//! [`crate::http`], as for every HTTP client of this program.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Url;

use super::errors::FetchError;
use crate::http::{ClientBuilderExt, Proxies, SetupError, error_chain as chain};

/// Where a module or a signature comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file (made absolute).
    File(PathBuf),
    /// An `https://` URL.
    Url(Url),
}

impl Location {
    /// `https://...` is a URL; any other `scheme://` is refused; anything else is a file.
    pub fn parse(text: &str, what: &'static str) -> Result<Location, FetchError> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Url::parse(text).map(Location::Url).map_err(|e| FetchError::BadUrl {
                what,
                location: text.to_owned(),
                message: format!("not a valid URL: {e}"),
            });
        }
        if let Some((scheme, _)) = text.split_once("://")
            && !scheme.is_empty()
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(FetchError::Scheme { location: text.to_owned() });
        }
        let path = Path::new(text);
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Location::File(path))
    }

    /// The signature beside a module: the same file or URL path with `.minisig` appended.
    pub fn signature_beside(&self) -> Location {
        match self {
            Location::File(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".minisig");
                Location::File(PathBuf::from(name))
            }
            Location::Url(url) => {
                let mut url = url.clone();
                let path = format!("{}.minisig", url.path());
                url.set_path(&path);
                Location::Url(url)
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url(url) => write!(f, "{url}"),
        }
    }
}

/// Fetches files and URLs; the HTTPS client is built on first use.
pub struct Fetcher {
    ca_file: Option<PathBuf>,
    timeout: Duration,
    client: Option<reqwest::blocking::Client>,
}

impl Fetcher {
    /// A fetcher trusting the system's roots plus those in `ca_file`; `timeout` bounds each
    /// request as a whole (connecting alone gets at most 10 s of it).
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Fetcher {
        Fetcher { ca_file: ca_file.map(Path::to_path_buf), timeout, client: None }
    }

    /// The bytes at `location`, at most `limit` of them. `what` names the thing in messages
    /// ("policy module", "signature").
    pub fn fetch(
        &mut self,
        what: &'static str,
        location: &Location,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        match location {
            Location::File(path) => read_file(what, path, limit),
            Location::Url(url) => self.download(what, url, limit),
        }
    }

    fn client(&mut self) -> Result<&reqwest::blocking::Client, FetchError> {
        if self.client.is_none() {
            let setup = |e: SetupError| match e {
                SetupError::CaBundle { path, reason } => FetchError::CaFile { path, message: reason },
                other => FetchError::Setup(other.to_string()),
            };
            let proxies = Proxies::from_env().map_err(setup)?;
            let client = reqwest::blocking::Client::builder()
                .https_only(true)
                .timeout(self.timeout)
                .connect_timeout(self.timeout.min(Duration::from_secs(10)))
                .redirect(reqwest::redirect::Policy::limited(5))
                .shared_settings(self.ca_file.as_deref(), &proxies)
                .map_err(setup)?
                .build()
                .map_err(|e| FetchError::Setup(chain(&e)))?;
            self.client = Some(client);
        }
        self.client.as_ref().ok_or_else(|| FetchError::Transport {
            what: "HTTPS client",
            location: String::new(),
            message: "not available".into(),
        })
    }

    fn download(&mut self, what: &'static str, url: &Url, limit: u64) -> Result<Vec<u8>, FetchError> {
        let location = url.to_string();
        let transport = |e: reqwest::Error| FetchError::Transport {
            what,
            location: location.clone(),
            message: chain(&e),
        };
        let deadline = Instant::now() + self.timeout;
        let mut response = self.client()?.get(url.clone()).send().map_err(transport)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(FetchError::NotFound { what, location });
        }
        if !status.is_success() {
            return Err(FetchError::Status { what, location, status: status.as_u16() });
        }
        if let Some(size) = response.content_length()
            && size > limit
        {
            return Err(FetchError::TooLarge { what, location, size: Some(size), limit });
        }
        // Read in chunks, so neither a body past the limit nor a server that drips bytes slowly
        // (each read has its own timeout) holds the install longer than the timeout.
        let mut body = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if Instant::now() > deadline {
                return Err(FetchError::Transport {
                    what,
                    location,
                    message: format!("the download took longer than {} s", self.timeout.as_secs()),
                });
            }
            let n = response.read(&mut chunk).map_err(|e| FetchError::Transport {
                what,
                location: location.clone(),
                message: format!("reading the body failed: {}", chain(&e)),
            })?;
            if n == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..n]);
            if body.len() as u64 > limit {
                return Err(FetchError::TooLarge { what, location, size: None, limit });
            }
        }
    }
}

fn read_file(what: &'static str, path: &Path, limit: u64) -> Result<Vec<u8>, FetchError> {
    let location = path.display().to_string();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FetchError::NotFound { what, location });
        }
        Ok(meta) if meta.is_file() && meta.len() > limit => {
            return Err(FetchError::TooLarge { what, location, size: Some(meta.len()), limit });
        }
        _ => {}
    }
    // A file given to `policy install` need not be root's: its bytes are what the signature is
    // checked against (or, with --allow-unsigned, what the admin vouched for), read once, bounded.
    crate::fs::read_bounded(path, limit).map(|bytes| bytes.to_vec()).map_err(|e| FetchError::Read {
        what,
        location,
        source: std::io::Error::other(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_parsed() {
        assert!(matches!(Location::parse("https://example.com/p.wasm", "m"), Ok(Location::Url(_))));
        for refused in ["http://example.com/p.wasm", "ftp://example.com/p", "file:///tmp/p.wasm"] {
            let error = Location::parse(refused, "m").expect_err("refused");
            assert!(error.to_string().contains("only https:// URLs and local files"), "{error}");
        }
        match Location::parse("p.wasm", "m").expect("file") {
            Location::File(path) => assert!(path.is_absolute() && path.ends_with("p.wasm")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_signature_sits_beside_the_module() {
        let url = Location::parse("https://example.com/a/p.wasm?v=2", "m").expect("url");
        assert_eq!(url.signature_beside().to_string(), "https://example.com/a/p.wasm.minisig?v=2");
        let file = Location::parse("/srv/p.wasm", "m").expect("file");
        assert_eq!(file.signature_beside().to_string(), "/srv/p.wasm.minisig");
    }

    #[test]
    fn files_are_bounded_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.wasm");
        std::fs::write(&path, vec![0u8; 100]).expect("write");
        let mut fetcher = Fetcher::new(None, Duration::from_secs(5));
        let location = Location::File(path.clone());
        assert_eq!(fetcher.fetch("policy module", &location, 100).expect("fits").len(), 100);
        let error = fetcher.fetch("policy module", &location, 99).expect_err("too large");
        assert!(matches!(error, FetchError::TooLarge { size: Some(100), .. }), "{error}");
        assert!(error.to_string().contains("big.wasm"), "{error}");
        let missing = Location::File(dir.path().join("nope.wasm"));
        assert!(matches!(fetcher.fetch("signature", &missing, 10), Err(FetchError::NotFound { .. })));
    }
}
