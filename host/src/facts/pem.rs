//! A PEM scanner that reports precisely what is wrong with a file (truncated block, bad base64,
//! DER where PEM was expected...). Text outside `-----BEGIN/END-----` blocks is ignored, as
//! OpenSSL does (e.g. `Bag Attributes` from a PKCS#12 export, or `openssl x509 -text` output).

use std::fmt;

use zeroize::Zeroizing;

/// One `-----BEGIN LABEL-----` ... `-----END LABEL-----` block.
pub struct PemBlock {
    /// The label, e.g. `CERTIFICATE`, `PRIVATE KEY`.
    pub label: String,
    /// 1-based line of the BEGIN line.
    pub line: usize,
    /// The decoded contents (wiped when dropped: it may be a private key).
    pub der: Zeroizing<Vec<u8>>,
    /// The block has RFC 1421 headers saying it is encrypted (`Proc-Type: 4,ENCRYPTED`).
    pub encrypted: bool,
}

// Never shows the contents.
impl fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("line", &self.line)
            .field("der_len", &self.der.len())
            .field("encrypted", &self.encrypted)
            .finish()
    }
}

impl PemBlock {
    /// Whether the block holds a certificate.
    pub fn is_certificate(&self) -> bool {
        matches!(self.label.as_str(), "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE")
    }

    /// Whether the block holds a private key (in any format, encrypted or not).
    pub fn is_private_key(&self) -> bool {
        self.label.ends_with("PRIVATE KEY")
    }
}

/// Why a file holds no usable PEM. Messages name no contents, only positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemError {
    /// The file is empty or only whitespace.
    Empty,
    /// Binary data that parses as a DER certificate.
    DerCertificate,
    /// Other binary data.
    Binary,
    /// Text without any PEM block.
    NoPem,
    /// A BEGIN line without its END line.
    Truncated { label: String, line: usize },
    /// An END line that does not match the BEGIN line.
    Mismatched { label: String, line: usize, end: String, end_line: usize },
    /// The base64 body is damaged.
    BadBase64 { label: String, line: usize },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::Empty => f.write_str("the file is empty"),
            PemError::DerCertificate => f.write_str(
                "holds a binary (DER) certificate, but PEM is expected; convert it with \
                 `openssl x509 -inform der -in FILE -out FILE.pem`",
            ),
            PemError::Binary => f.write_str("holds binary data, not PEM text"),
            PemError::NoPem => f.write_str("holds no PEM data (no \"-----BEGIN ...-----\" line)"),
            PemError::Truncated { label, line } => write!(
                f,
                "the PEM block \"-----BEGIN {}-----\" at line {line} has no END line (the file is truncated)",
                shown(label)
            ),
            PemError::Mismatched { label, line, end, end_line } => write!(
                f,
                "the PEM block \"-----BEGIN {}-----\" at line {line} ends with \"-----END {}-----\" at line {end_line}",
                shown(label),
                shown(end)
            ),
            PemError::BadBase64 { label, line } => {
                write!(
                    f,
                    "the PEM block \"-----BEGIN {}-----\" at line {line} is damaged (invalid base64)",
                    shown(label)
                )
            }
        }
    }
}

/// A label from the file, as messages quote it: escaped and at most 64 characters.
fn shown(label: &str) -> std::borrow::Cow<'_, str> {
    crate::text::untrusted_max(label, 64)
}

struct Open {
    label: String,
    line: usize,
    body: Zeroizing<String>,
    encrypted: bool,
    in_headers: bool,
}

/// Every PEM block in `data`, in order. An empty list is never returned: a file without blocks
/// is an error saying what it holds instead.
pub fn scan(data: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let mut blocks = Vec::new();
    let mut open: Option<Open> = None;
    for (index, raw_line) in data.split(|b| *b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim_ascii();
        if let Some(block) = open.as_mut() {
            if let Some(end) = marker(line, b"-----END ") {
                if end != block.label {
                    return Err(PemError::Mismatched {
                        label: block.label.clone(),
                        line: block.line,
                        end,
                        end_line: line_no,
                    });
                }
                let Some(block) = open.take() else { break };
                blocks.push(finish(block)?);
            } else if marker(line, b"-----BEGIN ").is_some() {
                return Err(PemError::Truncated { label: block.label.clone(), line: block.line });
            } else if block.in_headers && line.contains(&b':') {
                if line.starts_with(b"Proc-Type:") && line.windows(9).any(|w| w == b"ENCRYPTED") {
                    block.encrypted = true;
                }
            } else if line.is_empty() {
                // The blank line after RFC 1421 headers, or stray blank lines.
            } else {
                block.in_headers = false;
                if !line.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
                    return Err(PemError::BadBase64 { label: block.label.clone(), line: block.line });
                }
                // Checked just above: ASCII only.
                block.body.push_str(std::str::from_utf8(line).unwrap_or_default());
            }
        } else if let Some(label) = marker(line, b"-----BEGIN ") {
            open = Some(Open {
                label,
                line: line_no,
                // Room for the whole file (bounded): no reallocation while the body grows.
                body: Zeroizing::new(String::with_capacity(data.len().min(64 * 1024))),
                encrypted: false,
                in_headers: true,
            });
        }
    }
    if let Some(block) = open {
        return Err(PemError::Truncated { label: block.label, line: block.line });
    }
    if blocks.is_empty() {
        return Err(no_blocks(data));
    }
    Ok(blocks)
}

/// The label of a `-----BEGIN LABEL-----` / `-----END LABEL-----` line.
fn marker(line: &[u8], prefix: &[u8]) -> Option<String> {
    let label = line.strip_prefix(prefix)?.strip_suffix(b"-----")?;
    if label.is_empty()
        || !label
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'_'))
    {
        return None;
    }
    Some(String::from_utf8_lossy(label).into_owned())
}

fn finish(block: Open) -> Result<PemBlock, PemError> {
    let der = if block.body.is_empty() {
        Vec::new()
    } else if !block.body.len().is_multiple_of(4) {
        return Err(PemError::BadBase64 { label: block.label, line: block.line });
    } else {
        openssl::base64::decode_block(&block.body)
            .map_err(|_| PemError::BadBase64 { label: block.label.clone(), line: block.line })?
    };
    Ok(PemBlock {
        label: block.label,
        line: block.line,
        der: Zeroizing::new(der),
        encrypted: block.encrypted,
    })
}

fn no_blocks(data: &[u8]) -> PemError {
    if data.iter().all(u8::is_ascii_whitespace) {
        return PemError::Empty;
    }
    // A DER SEQUENCE (0x30) that OpenSSL parses as a certificate.
    if data.first() == Some(&0x30) && openssl::x509::X509::from_der(data).is_ok() {
        return PemError::DerCertificate;
    }
    let binary = data.iter().take(4096).any(|b| *b == 0 || (*b < 0x20 && !b.is_ascii_whitespace()));
    if binary { PemError::Binary } else { PemError::NoPem }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn blocks_and_errors() {
        let text = b"Bag Attributes\n-----BEGIN CERTIFICATE-----\r\nQUJD\r\n-----END CERTIFICATE-----\r\n\
                     junk\n-----BEGIN EC PRIVATE KEY-----\nRA==\n-----END EC PRIVATE KEY-----\n";
        let blocks = scan(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].label.as_str(), blocks[0].line, &blocks[0].der[..]),
            ("CERTIFICATE", 2, &b"ABC"[..])
        );
        assert!(blocks[0].is_certificate() && !blocks[0].is_private_key());
        assert_eq!(
            (blocks[1].label.as_str(), blocks[1].line, &blocks[1].der[..]),
            ("EC PRIVATE KEY", 6, &b"D"[..])
        );
        assert!(blocks[1].is_private_key());
        assert!(!format!("{:?}", blocks[1]).contains("RA=="));

        assert_eq!(scan(b"").unwrap_err(), PemError::Empty);
        assert_eq!(scan(b" \n\n").unwrap_err(), PemError::Empty);
        assert_eq!(scan(b"hello world\n").unwrap_err(), PemError::NoPem);
        assert_eq!(scan(b"\x00\x01\x02garbage").unwrap_err(), PemError::Binary);
        assert_eq!(
            scan(b"-----BEGIN CERTIFICATE-----\nQUJD\n").unwrap_err(),
            PemError::Truncated { label: "CERTIFICATE".into(), line: 1 }
        );
        assert_eq!(
            scan(b"-----BEGIN CERTIFICATE-----\nQUJD\n-----BEGIN CERTIFICATE-----\n").unwrap_err(),
            PemError::Truncated { label: "CERTIFICATE".into(), line: 1 }
        );
        assert_eq!(
            scan(b"\n-----BEGIN CERTIFICATE-----\nQU*D\n-----END CERTIFICATE-----\n").unwrap_err(),
            PemError::BadBase64 { label: "CERTIFICATE".into(), line: 2 }
        );
        assert_eq!(
            scan(b"-----BEGIN CERTIFICATE-----\nQUJ\n-----END CERTIFICATE-----\n").unwrap_err(),
            PemError::BadBase64 { label: "CERTIFICATE".into(), line: 1 }
        );
        assert!(matches!(
            scan(b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END PRIVATE KEY-----\n").unwrap_err(),
            PemError::Mismatched { end_line: 3, .. }
        ));
        let enc = scan(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nQUJD\n-----END RSA PRIVATE KEY-----\n").unwrap();
        assert!(enc[0].encrypted);
    }
}
