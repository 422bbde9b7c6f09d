use std::fmt;

use crate::{
    error::{ConfigError, Field},
    names::ObjectName,
    string_enum::string_enum,
};

string_enum! {
    /// The kind of object a certificate authority is mounted from.
    pub enum CaSourceKind {
        Secret => "secret",
        ConfigMap => "configmap",
    }
}

/// Where a CA certificate comes from: `secret/NAME` or `configmap/NAME`, as kubectl writes it.
/// The volume is optional: a sandbox starts without it and the init script skips the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSource {
    pub kind: CaSourceKind,
    pub name: ObjectName,
}

impl CaSource {
    pub fn parse(field: Field, value: &str) -> Result<Self, ConfigError> {
        let Some((kind, name)) = value.split_once('/') else {
            return Err(ConfigError::invalid(
                field,
                value,
                "does not say where the CA comes from",
                "write secret/NAME or configmap/NAME",
            ));
        };
        Ok(Self {
            kind: CaSourceKind::parse(field, kind)?,
            name: ObjectName::parse(field, name)?,
        })
    }

    pub(crate) fn secret(name: ObjectName) -> Self {
        Self {
            kind: CaSourceKind::Secret,
            name,
        }
    }
}

impl fmt::Display for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Field = Field::new("--vault-ca", "vaultCa");

    #[test]
    fn parses_kind_and_name() {
        let ca = CaSource::parse(F, "configmap/vault-ca").unwrap();
        assert_eq!(ca.kind, CaSourceKind::ConfigMap);
        assert_eq!(ca.to_string(), "configmap/vault-ca");
        for bad in ["vault-ca", "pod/vault-ca", "secret/Vault", "secret/"] {
            assert!(CaSource::parse(F, bad).is_err(), "{bad}");
        }
    }
}
