use std::fmt;

/// Prints the first relay program the image has (see `Relay::from_probe`).
pub(super) const PROBE: &str = include_str!("relay-probe.sh");
pub(super) const BASH_RELAY: &str = include_str!("relay.bash");

/// A program in the sandbox that carries one TCP connection to a local port over an exec
/// session's stdin and stdout: the exec tunnel, for runtimes whose port-forward fails (gVisor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// bash's `/dev/tcp` (every devcontainer base image has bash).
    Bash,
    Socat,
    Netcat,
}

impl Relay {
    /// The exec command line that finds a relay: it prints one program name, or exits 1.
    pub fn probe_command() -> Vec<String> {
        ["sh", "-c", PROBE, "claude-sandbox-probe"]
            .map(str::to_owned)
            .to_vec()
    }

    /// Reads the probe's output.
    pub fn from_probe(output: &str) -> Option<Self> {
        match output.trim() {
            "bash" => Some(Self::Bash),
            "socat" => Some(Self::Socat),
            "nc" => Some(Self::Netcat),
            _ => None,
        }
    }

    /// The exec command line that relays stdin/stdout to 127.0.0.1:`port` in the sandbox.
    pub fn command(self, port: u16) -> Vec<String> {
        let port = port.to_string();
        match self {
            Self::Bash => vec![
                "bash".into(),
                "-c".into(),
                BASH_RELAY.into(),
                "claude-sandbox-relay".into(),
                port,
            ],
            Self::Socat => vec!["socat".into(), "-".into(), format!("TCP:127.0.0.1:{port}")],
            Self::Netcat => vec!["nc".into(), "127.0.0.1".into(), port],
        }
    }

    /// What `--via exec` needs when the probe finds nothing.
    pub const MISSING: &str = "the sandbox image has none of bash, socat or nc to relay connections through exec; install one in the devcontainer, or use --via port-forward";
}

impl fmt::Display for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bash => "bash /dev/tcp",
            Self::Socat => "socat",
            Self::Netcat => "nc",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_names_a_relay() {
        assert_eq!(Relay::from_probe("bash\n"), Some(Relay::Bash));
        assert_eq!(Relay::from_probe("socat"), Some(Relay::Socat));
        assert_eq!(Relay::from_probe("nc\n"), Some(Relay::Netcat));
        assert_eq!(Relay::from_probe(""), None);
        assert_eq!(
            Relay::Socat.command(2222),
            ["socat", "-", "TCP:127.0.0.1:2222"]
        );
        assert_eq!(Relay::Bash.command(13337)[4], "13337");
    }
}
