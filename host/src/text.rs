//! The ground floor's one rule for text that came from outside — names and fields read from
//! certificates, error messages that quote them, a CA's problem details: before it reaches a
//! terminal or a mail it is made inert. Control characters (C0, DEL, C1) and the Unicode
//! characters that reorder or hide text (bidirectional overrides and isolates, zero-width
//! marks) are shown escaped (`\n`, `\u{1b}`, `\u{202e}`), so a certificate whose organisation
//! is `"Evil\nerror: FORGED"` cannot print a line of its own, move the cursor or clear the
//! screen; and it is cut at [`MAX_SHOWN`] characters. JSON output needs none of this (serde
//! escapes) and gets the exact values; Prometheus labels have their own escaping.

use std::borrow::Cow;

/// The most characters of one untrusted value shown.
pub const MAX_SHOWN: usize = 1024;

/// Whether `c` is shown escaped.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` made safe to show (see the module documentation); borrowed when nothing changes.
pub fn untrusted(text: &str) -> Cow<'_, str> {
    untrusted_max(text, MAX_SHOWN)
}

/// [`untrusted`], cut at `max` characters (a label or a value quoted inside a message).
pub fn untrusted_max(text: &str, max: usize) -> Cow<'_, str> {
    let long = text.chars().nth(max).is_some();
    if !long && !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max * 2) + 16);
    for c in text.chars().take(max) {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    if long {
        out.push_str(&format!("… ({} bytes in all)", text.len()));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched_and_borrowed() {
        assert!(matches!(untrusted("www.example.com, Let's Encrypt R3"), Cow::Borrowed(_)));
        assert_eq!(untrusted("Zürich – 東京"), "Zürich – 東京");
    }

    #[test]
    fn control_and_reordering_characters_are_shown_escaped() {
        assert_eq!(untrusted("Evil\nerror: FORGED\u{1b}[2K"), "Evil\\nerror: FORGED\\u{1b}[2K");
        assert_eq!(untrusted("a\rb\tc\u{7f}d\u{85}"), "a\\rb\\tc\\u{7f}d\\u{85}");
        assert_eq!(untrusted("moc.\u{202e}elpmaxe"), "moc.\\u{202e}elpmaxe");
        assert_eq!(untrusted("a\u{200b}b"), "a\\u{200b}b");
        assert!(!untrusted("x\ny").contains('\n'));
    }

    #[test]
    fn long_values_are_cut_saying_how_long_they_were() {
        let long = "A".repeat(100_000);
        let shown = untrusted(&long);
        assert!(shown.len() < MAX_SHOWN + 40, "{}", shown.len());
        assert!(shown.ends_with("… (100000 bytes in all)"), "{shown}");
    }
}
