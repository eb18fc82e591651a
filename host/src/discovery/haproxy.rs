//! HAProxy: `haproxy.cfg`, the `crt` arguments of `bind … ssl` lines (combined PEM files, or a
//! directory of them), relative to `crt-base`; the bind address becomes a `tls` probe.

use std::path::PathBuf;

use super::text::split_host_port;
use super::{Ctx, Partial, at, push_endpoint};
use crate::config::probe::{ProbeEndpoint, Protocol};

pub(super) fn discover(ctx: &Ctx<'_>) -> Partial {
    let main = ctx.main.as_ref().map(|m| m.to_string_lossy().into_owned());
    let candidates = [main.as_deref().unwrap_or("/etc/haproxy/haproxy.cfg")];
    let (file, text) = match super::read_first(ctx, &candidates) {
        Ok(found) => found,
        Err(partial) => return partial,
    };
    let mut partial = Partial::default();
    let (reload, note) = ctx.reload("haproxy", "reload", None);
    let mut crt_base = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first() {
            Some(&"crt-base") => crt_base = words.get(1).unwrap_or(&"").to_string(),
            Some(&"bind") if words.contains(&"ssl") => {
                let origin = at(&file, i + 1, "bind");
                let endpoint = words.get(1).and_then(|a| split_host_port(a)).and_then(|(h, p)| {
                    p.map(|p| ProbeEndpoint::new(&super::probe_host(&h), p, Protocol::Tls))
                });
                for pair in words.windows(2) {
                    if pair[0] == "crt-list" {
                        partial.problems.push(ctx.problem(
                            Some(origin.clone()),
                            format!(
                                "crt-list {} is not read: list its certificates as services yourself",
                                pair[1]
                            ),
                        ));
                    }
                    if pair[0] != "crt" {
                        continue;
                    }
                    let named = if pair[1].starts_with('/') || crt_base.is_empty() {
                        pair[1].to_string()
                    } else {
                        format!("{}/{}", crt_base.trim_end_matches('/'), pair[1])
                    };
                    let path = ctx.root.path(&named);
                    let files: Vec<PathBuf> = if path.is_dir() {
                        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                            .unwrap_or_default();
                        files.retain(|f| {
                            f.is_file()
                                && !matches!(
                                    f.extension().and_then(|e| e.to_str()),
                                    Some("key" | "ocsp" | "issuer" | "sctl")
                                )
                        });
                        files.sort();
                        files
                    } else {
                        vec![path]
                    };
                    for f in files {
                        // A certificate without its key beside it in `<file>.key` is a combined file.
                        let key = PathBuf::from(format!("{}.key", f.display()));
                        let mut found =
                            ctx.found(f.clone(), key.exists().then_some(key), vec![origin.clone()]);
                        if let Some(e) = &endpoint {
                            push_endpoint(&mut found.probe, e.clone());
                        }
                        found.reload = reload.clone();
                        found.notes.extend(note.clone());
                        partial.found.push(found);
                    }
                }
            }
            _ => {}
        }
    }
    if partial.found.is_empty() && partial.problems.is_empty() {
        partial.absent = Some(format!("{} has no `bind … ssl crt …` line", file.display()));
    }
    partial
}
