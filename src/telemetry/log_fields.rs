//! Field values kept raw until a log line needs them.
//!
//! A span's fields are needed only if a line is written inside it, which on
//! the success path is never: so a span keeps what it was given (numbers as
//! numbers, strings copied into one buffer) and formatting, quoting and
//! escaping happen per line, not per span. Only `Debug` and `Display` values
//! are rendered when recorded, as that rendering is all there is of them.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

/// One recorded value; string kinds point into [`Fields::text`].
#[derive(Clone, Copy)]
enum Raw {
    /// A string value (quoted in text lines).
    Str(u32, u32),
    /// A `Debug` or `Display` rendering (written as it is, escaped).
    Rendered(u32, u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// The fields of a span or an event, in recording order; a field recorded
/// again replaces its earlier value.
#[derive(Default)]
pub struct Fields {
    text: String,
    values: Vec<(&'static str, Raw)>,
}

/// How a line is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `name=value` pairs separated by spaces.
    Text,
    /// `"name":value` members separated by commas.
    Json,
}

impl Fields {
    fn set(&mut self, name: &'static str, raw: Raw) {
        match self.values.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = raw,
            None => self.values.push((name, raw)),
        }
    }

    fn push_text(&mut self, value: &str) -> (u32, u32) {
        let start = self.text.len();
        self.text.push_str(value);
        (start as u32, self.text.len() as u32)
    }

    fn slice(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// The value of `name` as text, if it was recorded as a string or rendering.
    pub fn take_str(&mut self, name: &str) -> Option<String> {
        let i = self.values.iter().position(|(n, _)| *n == name)?;
        match self.values[i].1 {
            Raw::Str(s, e) | Raw::Rendered(s, e) => {
                self.values.remove(i);
                Some(self.slice((s, e)).to_owned())
            }
            _ => None,
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Writes every field in `style`, separated, with no leading separator.
    pub fn write(&self, style: Style, out: &mut String) {
        for (i, (name, raw)) in self.values.iter().enumerate() {
            match (style, i) {
                (_, 0) => {}
                (Style::Text, _) => out.push(' '),
                (Style::Json, _) => out.push(','),
            }
            match style {
                Style::Text => {
                    out.push_str(name);
                    out.push('=');
                }
                Style::Json => {
                    json_string(name, out);
                    out.push(':');
                }
            }
            self.write_value(*raw, style, out);
        }
    }

    fn write_value(&self, raw: Raw, style: Style, out: &mut String) {
        let _ = match (raw, style) {
            (Raw::Str(s, e), Style::Text) => write!(out, "{:?}", self.slice((s, e))),
            (Raw::Rendered(s, e), Style::Text) => {
                escape_controls(self.slice((s, e)), out);
                Ok(())
            }
            (Raw::Str(s, e) | Raw::Rendered(s, e), Style::Json) => {
                json_string(self.slice((s, e)), out);
                Ok(())
            }
            (Raw::I64(v), _) => write!(out, "{v}"),
            (Raw::U64(v), _) => write!(out, "{v}"),
            (Raw::F64(v), Style::Json) if !v.is_finite() => write!(out, "\"{v}\""),
            (Raw::F64(v), _) => write!(out, "{v}"),
            (Raw::Bool(v), _) => write!(out, "{v}"),
        };
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let range = self.push_text(value);
        self.set(field.name(), Raw::Str(range.0, range.1));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let start = self.text.len();
        let _ = write!(self.text, "{value:?}");
        let raw = Raw::Rendered(start as u32, self.text.len() as u32);
        self.set(field.name(), raw);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Raw::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Raw::U64(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), Raw::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Raw::Bool(value));
    }
}

/// `text` with every control character written as a Rust escape, so no value
/// can end a line, start a forged one or reach a terminal as an escape code.
pub fn escape_controls(text: &str, out: &mut String) {
    for c in text.chars() {
        match c.is_control() {
            true => {
                let _ = write!(out, "{}", c.escape_default());
            }
            false => out.push(c),
        }
    }
}

/// `text` as a JSON string.
pub fn json_string(text: &str, out: &mut String) {
    // Serialising a `str` to a `String` cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        let mut f = Fields::default();
        let (s, e) = f.push_text("a\"b\n");
        f.set("name", Raw::Str(s, e));
        f.set("n", Raw::U64(7));
        let (s, e) = f.push_text("Unavailable\u{1b}[31m");
        f.set("code", Raw::Rendered(s, e));
        f.set("ok", Raw::Bool(true));
        f.set("n", Raw::I64(-1));
        f
    }

    #[test]
    fn text_quotes_strings_escapes_controls_and_keeps_the_last_value() {
        let mut out = String::new();
        fields().write(Style::Text, &mut out);
        assert_eq!(
            out,
            r#"name="a\"b\n" n=-1 code=Unavailable\u{1b}[31m ok=true"#
        );
    }

    #[test]
    fn json_is_members_of_an_object() {
        let mut out = String::from("{");
        fields().write(Style::Json, &mut out);
        out.push('}');
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["name"], "a\"b\n");
        assert_eq!(v["n"], -1);
        assert_eq!(v["code"], "Unavailable\u{1b}[31m");
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn take_str_removes_the_field() {
        let mut f = fields();
        assert_eq!(f.take_str("name").as_deref(), Some("a\"b\n"));
        assert_eq!(f.take_str("name"), None);
        assert_eq!(f.take_str("n"), None, "not a string");
    }
}
