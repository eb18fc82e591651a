//! Small lexers for the daemons' configuration syntaxes.

/// A token of an nginx-style configuration (`name args...;`, `{`, `}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub line: usize,
    /// Whether it was written in quotes (so `;` or `{` inside are text).
    pub quoted: bool,
}

impl Token {
    pub fn is(&self, punct: &str) -> bool {
        !self.quoted && self.text == punct
    }
}

/// Splits nginx syntax into tokens: words, quoted strings (with `\` escapes), `;`, `{`, `}`;
/// `#` starts a comment to the end of the line.
pub fn nginx_tokens(src: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = src.chars().peekable();
    let mut line = 1;
    let mut word = String::new();
    let mut word_line = 1;
    let flush = |word: &mut String, tokens: &mut Vec<Token>, line: usize| {
        if !word.is_empty() {
            tokens.push(Token { text: std::mem::take(word), line, quoted: false });
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                flush(&mut word, &mut tokens, word_line);
                line += 1;
            }
            c if c.is_whitespace() => flush(&mut word, &mut tokens, word_line),
            '#' if word.is_empty() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            ';' | '{' | '}' => {
                flush(&mut word, &mut tokens, word_line);
                tokens.push(Token { text: c.to_string(), line, quoted: false });
            }
            '"' | '\'' if word.is_empty() => {
                let start = line;
                let mut text = String::new();
                let mut closed = false;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                if n == '\n' {
                                    line += 1;
                                }
                                text.push(n);
                            }
                        }
                        q2 if q2 == c => {
                            closed = true;
                            break;
                        }
                        '\n' => {
                            line += 1;
                            text.push('\n');
                        }
                        other => text.push(other),
                    }
                }
                if !closed {
                    return Err(format!("line {start}: a quoted string is not closed"));
                }
                tokens.push(Token { text, line: start, quoted: true });
            }
            '\\' => {
                if word.is_empty() {
                    word_line = line;
                }
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            other => {
                if word.is_empty() {
                    word_line = line;
                }
                word.push(other);
            }
        }
    }
    flush(&mut word, &mut tokens, word_line);
    Ok(tokens)
}

/// One logical line of an Apache-style configuration (Apache, ProFTPD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApacheLine {
    /// `<Name args>`
    Open { name: String, args: Vec<String>, line: usize },
    /// `</Name>`
    Close { name: String, line: usize },
    /// `Name args`
    Directive { name: String, args: Vec<String>, line: usize },
}

/// Splits Apache-style text into logical lines (a trailing `\` continues a line; `#` starts a
/// comment line), each a section start or end, or a directive with its arguments.
pub fn apache_lines(src: &str) -> Vec<ApacheLine> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut pending_line = 0;
    for (i, raw) in src.lines().enumerate() {
        let number = i + 1;
        if pending.is_empty() {
            pending_line = number;
        }
        let trimmed = raw.trim();
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let logical = std::mem::take(&mut pending);
        let logical = logical.trim();
        if logical.is_empty() || logical.starts_with('#') {
            continue;
        }
        if let Some(inner) = logical.strip_prefix("</") {
            let name = inner.trim_end_matches('>').trim().to_string();
            out.push(ApacheLine::Close { name, line: pending_line });
        } else if let Some(inner) = logical.strip_prefix('<') {
            let inner = inner.trim_end().trim_end_matches('>');
            let mut words = split_words(inner);
            if words.is_empty() {
                continue;
            }
            let name = words.remove(0);
            out.push(ApacheLine::Open { name, args: words, line: pending_line });
        } else {
            let mut words = split_words(logical);
            let name = words.remove(0);
            out.push(ApacheLine::Directive { name, args: words, line: pending_line });
        }
    }
    out
}

/// Splits on whitespace, keeping "double" or 'single' quoted words together (quotes removed).
pub fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            for q in chars.by_ref() {
                if q == c {
                    break;
                }
                word.push(q);
            }
        } else {
            while let Some(&w) = chars.peek() {
                if w.is_whitespace() {
                    break;
                }
                word.push(w);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

/// At most `max` characters of `text`.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Splits `host:port`, `[v6]:port`, `port`, `*:port` (as listen directives write them).
/// Returns (host, port); the host is empty when not given.
pub fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    if let Ok(port) = text.parse::<u16>() {
        return Some((String::new(), Some(port)));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_string(), Some(port.parse().ok()?))),
        Some(_) => Some((text.to_string(), None)),
        None => Some((text.to_string(), None)),
    }
}
