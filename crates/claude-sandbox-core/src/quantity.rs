//! Kubernetes resource quantities (`500m`, `4Gi`, `1e3`), parsed as the API server parses them.

use std::{cmp::Ordering, fmt};

use crate::error::{ConfigError, Field};

/// A non-negative quantity. Keeps the user's spelling for output and its value for comparison.
#[derive(Debug, Clone)]
pub struct Quantity {
    text: String,
    value: f64,
}

const BINARY: [(&str, i32); 6] = [
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];
const DECIMAL: [(&str, i32); 9] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

impl Quantity {
    pub fn parse(field: Field, text: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError::invalid(
                field,
                text,
                "is not a Kubernetes quantity",
                "write a number with an optional suffix, such as 500m, 2, 4Gi or 10Gi",
            )
        };
        let number_end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(number_end);
        let number = number.strip_prefix('+').unwrap_or(number);
        if text.starts_with('-') {
            return Err(ConfigError::invalid(
                field,
                text,
                "is negative",
                "use a positive quantity such as 2 or 4Gi",
            ));
        }
        if number.is_empty()
            || number == "."
            || number.matches('.').count() > 1
            || number.contains('+')
        {
            return Err(bad());
        }
        let mantissa: f64 = number.parse().map_err(|_| bad())?;
        let scale = scale_of(suffix).ok_or_else(bad)?;
        Ok(Self {
            text: text.to_owned(),
            value: mantissa * scale,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The quantity in base units (cores, bytes).
    pub fn value(&self) -> f64 {
        self.value
    }
}

fn scale_of(suffix: &str) -> Option<f64> {
    if suffix.is_empty() {
        return Some(1.0);
    }
    if let Some((_, power)) = BINARY.iter().find(|(s, _)| *s == suffix) {
        return Some(2f64.powi(*power));
    }
    if let Some((_, power)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
        return Some(10f64.powi(*power));
    }
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(10f64.powi(exponent.parse().ok()?))
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("--workspace-size", "workspaceSize");

    fn q(s: &str) -> Quantity {
        Quantity::parse(F, s).unwrap()
    }

    #[test]
    fn accepts_kubernetes_spellings() {
        assert_eq!(q("10Gi").value(), 10.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(q("500m").value(), 0.5);
        assert_eq!(q("2").value(), 2.0);
        assert_eq!(q("1.5").value(), 1.5);
        assert_eq!(q("1e3").value(), 1000.0);
        assert_eq!(q("1E-3").value(), 0.001);
        assert_eq!(q("4k").value(), 4000.0);
        assert_eq!(q("+1M").value(), 1e6);
        assert_eq!(q("10Gi").as_str(), "10Gi");
    }

    #[test]
    fn compares_by_value() {
        assert!(q("1Gi") > q("1G"));
        assert!(q("1000m") == q("1"));
        assert!(q("500Mi") < q("1Gi"));
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        for bad in [
            "", "10GB", "Gi", "1.2.3", "ten", "1 Gi", "1e", "1e+", "1ki", ".", "1Gi ",
        ] {
            let err = Quantity::parse(F, bad).unwrap_err().to_string();
            assert!(err.contains("--workspace-size"), "{bad}: {err}");
            assert!(err.contains("such as"), "{bad}: {err}");
        }
        let negative = Quantity::parse(F, "-1Gi").unwrap_err().to_string();
        assert!(negative.contains("negative"), "{negative}");
    }
}
