//! The plain-text part of a probe: the TCP connection with its time limits, and the dialogues
//! that upgrade SMTP (`EHLO`, `STARTTLS`), IMAP (`STARTTLS`), POP3 (`STLS`) and FTP
//! (`AUTH TLS`) connections to TLS.
//!
//! Replies are read one byte at a time straight from the socket, so that nothing the server
//! sends after its "go ahead" is swallowed by a buffer: the TLS handshake starts exactly where
//! the plain text ends. Every line is bounded ([`MAX_LINE`]), every reply too ([`MAX_LINES`]),
//! and every read and write has the step's time limit, capped by the probe's overall deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::errors::{ProbeError, describe_io};
use crate::config::probe::{ProbeEndpoint, Protocol};

/// The longest reply line read, in bytes (RFC 5321 allows 512; IMAP greetings can be longer).
pub const MAX_LINE: usize = 8192;
/// The most lines one reply may have (a long EHLO list, an IMAP greeting with untagged data).
pub const MAX_LINES: usize = 100;
/// The tag of the IMAP command.
const IMAP_TAG: &str = "C1";

/// A TCP connection with a per-step time limit and an overall deadline.
pub(crate) struct Conn {
    pub stream: TcpStream,
    step: Duration,
    deadline: Instant,
    overall: Duration,
}

/// Why a read or write failed: a message, or the overall deadline.
pub(crate) enum Fail {
    Message(String),
    Overall,
}

impl Conn {
    /// Connects to the endpoint: each resolved address in turn, each within the step limit.
    pub fn open(endpoint: &ProbeEndpoint, step: Duration, overall: Duration) -> Result<Conn, ProbeError> {
        let deadline = Instant::now() + overall;
        let addresses: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|e| ProbeError::Resolve(describe_io(&e, step)))?
            .collect();
        if addresses.is_empty() {
            return Err(ProbeError::Resolve(format!("{} has no address", endpoint.host)));
        }
        let mut last = None;
        for address in addresses {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ProbeError::Overall { step: "connect", limit: overall });
            }
            match TcpStream::connect_timeout(&address, step.min(remaining)) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn { stream, step, deadline, overall });
                }
                Err(e) => last = Some(e),
            }
        }
        let error = last.map(|e| describe_io(&e, step)).unwrap_or_default();
        Err(ProbeError::Connect(error))
    }

    /// The probe's overall limit.
    pub fn overall(&self) -> Duration {
        self.overall
    }

    /// Sets the socket's read and write timeouts for the next step; `Err` once the overall
    /// deadline has passed.
    pub fn arm(&self) -> Result<Duration, Fail> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining < Duration::from_millis(1) {
            return Err(Fail::Overall);
        }
        let limit = self.step.min(remaining);
        let set = self
            .stream
            .set_read_timeout(Some(limit))
            .and_then(|()| self.stream.set_write_timeout(Some(limit)));
        set.map_err(|e| Fail::Message(describe_io(&e, self.step)))?;
        Ok(limit)
    }

    fn send(&mut self, line: &str) -> Result<(), Fail> {
        self.arm()?;
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| self.stream.flush())
            .map_err(|e| Fail::Message(describe_io(&e, self.step)))
    }

    /// One line without its CR LF.
    fn line(&mut self) -> Result<String, Fail> {
        let mut bytes = Vec::with_capacity(128);
        let mut byte = [0u8; 1];
        loop {
            self.arm()?;
            match self.stream.read(&mut byte) {
                Ok(0) => {
                    return Err(Fail::Message(if bytes.is_empty() {
                        "the server closed the connection".into()
                    } else {
                        format!(
                            "the server closed the connection in the middle of a line ({:?})",
                            clip(&String::from_utf8_lossy(&bytes))
                        )
                    }));
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => {
                    if bytes.len() >= MAX_LINE {
                        return Err(Fail::Message(format!("a reply line longer than {MAX_LINE} bytes")));
                    }
                    bytes.push(byte[0]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Fail::Message(describe_io(&e, self.step))),
            }
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// An SMTP or FTP reply: `NNN-text` lines up to the `NNN text` line. Returns the code and
    /// the lines.
    fn numeric_reply(&mut self) -> Result<(u16, Vec<String>), Fail> {
        let mut lines = Vec::new();
        loop {
            let line = self.line()?;
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (100..600).contains(c));
            let Some(code) = code else {
                return Err(Fail::Message(format!("{:?} is not a numeric reply", clip(&line))));
            };
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return Ok((code, lines));
            }
            if lines.len() >= MAX_LINES {
                return Err(Fail::Message(format!("a reply of more than {MAX_LINES} lines")));
            }
        }
    }
}

/// A reply for a message: its last line, clipped.
fn quote(lines: &[String]) -> String {
    format!("{:?}", clip(lines.last().map(String::as_str).unwrap_or("")))
}

/// At most 200 characters of server text.
pub(crate) fn clip(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= 200 {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(199).collect();
    clipped.push('…');
    clipped
}

/// Turns a failed read or write at `step` into the probe error `make` builds.
fn fail(
    conn: &Conn,
    step: &'static str,
    make: impl FnOnce(String) -> ProbeError,
) -> impl FnOnce(Fail) -> ProbeError {
    let overall = conn.overall();
    move |f| match f {
        Fail::Message(m) => make(m),
        Fail::Overall => ProbeError::Overall { step, limit: overall },
    }
}

/// Runs the protocol's upgrade dialogue; for implicit TLS there is nothing to do.
/// `client_name` is the name given in `EHLO`.
pub(crate) fn upgrade(conn: &mut Conn, protocol: Protocol, client_name: &str) -> Result<(), ProbeError> {
    match protocol {
        Protocol::Https
        | Protocol::Tls
        | Protocol::Imaps
        | Protocol::Pop3s
        | Protocol::Smtps
        | Protocol::Ftps => Ok(()),
        Protocol::Smtp => smtp(conn, client_name),
        Protocol::Imap => imap(conn),
        Protocol::Pop3 => pop3(conn),
        Protocol::Ftp => ftp(conn),
    }
}

fn smtp(conn: &mut Conn, client_name: &str) -> Result<(), ProbeError> {
    let (code, lines) = conn.numeric_reply().map_err(fail(conn, "banner", ProbeError::Banner))?;
    if code != 220 {
        return Err(ProbeError::Banner(format!("the server greeted with {} instead of 220", quote(&lines))));
    }
    conn.send(&format!("EHLO {client_name}"))
        .map_err(fail(conn, "EHLO", |reason| ProbeError::Dialogue { command: "EHLO", reason }))?;
    let (code, lines) = conn
        .numeric_reply()
        .map_err(fail(conn, "EHLO", |reason| ProbeError::Dialogue { command: "EHLO", reason }))?;
    if code != 250 {
        return Err(ProbeError::Dialogue {
            command: "EHLO",
            reason: format!("the server answered {}", quote(&lines)),
        });
    }
    let offered =
        lines.iter().any(|l| l.get(4..).is_some_and(|kw| kw.trim().eq_ignore_ascii_case("STARTTLS")));
    conn.send("STARTTLS").map_err(fail(conn, "STARTTLS", ProbeError::StartTlsRefused))?;
    let (code, lines) = conn.numeric_reply().map_err(fail(conn, "STARTTLS", ProbeError::StartTlsRefused))?;
    if code != 220 {
        return Err(ProbeError::StartTlsRefused(format!(
            "the server answered {}{}",
            quote(&lines),
            if offered { "" } else { " and did not offer STARTTLS after EHLO" }
        )));
    }
    Ok(())
}

fn imap(conn: &mut Conn) -> Result<(), ProbeError> {
    let greeting = conn.line().map_err(fail(conn, "banner", ProbeError::Banner))?;
    let upper = greeting.to_ascii_uppercase();
    if upper.starts_with("* PREAUTH") {
        return Err(ProbeError::Banner(
            "the server greeted with PREAUTH: the connection is already authenticated and STARTTLS is not allowed".into(),
        ));
    }
    if !upper.starts_with("* OK") {
        return Err(ProbeError::Banner(format!(
            "the server greeted with {:?} instead of \"* OK\"",
            clip(&greeting)
        )));
    }
    conn.send(&format!("{IMAP_TAG} STARTTLS")).map_err(fail(
        conn,
        "STARTTLS",
        ProbeError::StartTlsRefused,
    ))?;
    for _ in 0..MAX_LINES {
        let line = conn.line().map_err(fail(conn, "STARTTLS", ProbeError::StartTlsRefused))?;
        let Some(status) = line.strip_prefix(IMAP_TAG).and_then(|rest| rest.strip_prefix(' ')) else {
            continue; // untagged data (e.g. "* CAPABILITY ...")
        };
        if status.to_ascii_uppercase().starts_with("OK") {
            return Ok(());
        }
        return Err(ProbeError::StartTlsRefused(format!("the server answered {:?}", clip(&line))));
    }
    Err(ProbeError::StartTlsRefused(format!("no tagged answer within {MAX_LINES} lines")))
}

fn pop3(conn: &mut Conn) -> Result<(), ProbeError> {
    let greeting = conn.line().map_err(fail(conn, "banner", ProbeError::Banner))?;
    if !greeting.starts_with("+OK") {
        return Err(ProbeError::Banner(format!(
            "the server greeted with {:?} instead of \"+OK\"",
            clip(&greeting)
        )));
    }
    conn.send("STLS").map_err(fail(conn, "STLS", ProbeError::StartTlsRefused))?;
    let answer = conn.line().map_err(fail(conn, "STLS", ProbeError::StartTlsRefused))?;
    if !answer.starts_with("+OK") {
        return Err(ProbeError::StartTlsRefused(format!(
            "the server answered STLS with {:?}",
            clip(&answer)
        )));
    }
    Ok(())
}

fn ftp(conn: &mut Conn) -> Result<(), ProbeError> {
    let (code, lines) = conn.numeric_reply().map_err(fail(conn, "banner", ProbeError::Banner))?;
    if code != 220 {
        return Err(ProbeError::Banner(format!("the server greeted with {} instead of 220", quote(&lines))));
    }
    conn.send("AUTH TLS").map_err(fail(conn, "AUTH TLS", ProbeError::StartTlsRefused))?;
    let (code, lines) = conn.numeric_reply().map_err(fail(conn, "AUTH TLS", ProbeError::StartTlsRefused))?;
    if code != 234 {
        return Err(ProbeError::StartTlsRefused(format!(
            "the server answered AUTH TLS with {}",
            quote(&lines)
        )));
    }
    Ok(())
}
