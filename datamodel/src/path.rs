//! Parameter and object paths: syntax checks (fault 9005) and the template form with `{i}`.

use cwmp::FaultCode;

/// Longest path TR-069 allows.
pub const MAX_PATH: usize = 256;

/// A syntactically valid path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path<'a> {
    /// The path as given.
    pub text: &'a str,
    /// Ends with a dot: an object (partial path).
    pub partial: bool,
    /// The same path with every instance number replaced by `{i}`.
    pub template: String,
}

impl<'a> Path<'a> {
    /// Parses `text`. Instance numbers must be positive without leading zeros; names are
    /// letters, digits, `_` and `-`, starting with a letter or `_`. Alias-based addressing
    /// (`[alias]`) is not supported. Any error is fault 9005.
    pub fn parse(text: &'a str) -> Result<Path<'a>, (FaultCode, String)> {
        let bad = |why: &str| Err((FaultCode::InvalidParameterName, format!("{text:?}: {why}")));
        if text.len() > MAX_PATH {
            return bad("longer than 256 characters");
        }
        let partial = text.ends_with('.');
        let body = if partial { &text[..text.len() - 1] } else { text };
        if body.is_empty() {
            return bad("empty path");
        }
        let mut template = String::with_capacity(text.len() + 8);
        for (i, seg) in body.split('.').enumerate() {
            if seg.is_empty() {
                return bad("empty path segment");
            }
            if i > 0 {
                template.push('.');
            }
            if seg.bytes().all(|b| b.is_ascii_digit()) {
                if i == 0 || seg.starts_with('0') || seg.parse::<u32>().is_err() {
                    return bad("invalid instance number");
                }
                template.push_str("{i}");
            } else {
                let mut bytes = seg.bytes();
                let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
                if !first_ok || !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    return bad("invalid name segment");
                }
                template.push_str(seg);
            }
        }
        if partial {
            template.push('.');
        }
        Ok(Path { text, partial, template })
    }
}

/// The path of the object that holds `path` (`A.B.C` -> `A.B.`, `A.B.` -> `A.`).
pub fn parent(path: &str) -> &str {
    let t = path.strip_suffix('.').unwrap_or(path);
    match t.rfind('.') {
        Some(i) => &t[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_templates() {
        let p = Path::parse("Device.DHCPv4.Server.Pool.12.MinAddress").expect("valid");
        assert!(!p.partial);
        assert_eq!(p.template, "Device.DHCPv4.Server.Pool.{i}.MinAddress");
        let p = Path::parse("Device.X_VRGW-ORG_Virtualization.Instance.3.").expect("valid");
        assert!(p.partial);
        assert_eq!(p.template, "Device.X_VRGW-ORG_Virtualization.Instance.{i}.");
        for bad in [
            "",
            ".",
            "Device..A",
            "Device.0.A",
            "Device.01.A",
            "Device.A B",
            "Device.[x].A",
            "1.A",
            "Device.99999999999.A",
        ] {
            assert_eq!(Path::parse(bad).map_err(|e| e.0), Err(FaultCode::InvalidParameterName), "{bad:?}");
        }
        assert!(Path::parse(&"A.".repeat(200)).is_err());
        assert_eq!(parent("A.B.C"), "A.B.");
        assert_eq!(parent("A.B."), "A.");
    }
}
