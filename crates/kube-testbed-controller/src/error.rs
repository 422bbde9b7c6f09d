//! The crate's one error type. Reconcile errors also end up in status conditions (as upstream's
//! `ReconcilerError` messages), so their texts follow upstream's where there is one.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("{kind} {name} is not what the CRD describes: {source}")]
    Invalid {
        kind: &'static str,
        name: String,
        #[source]
        source: serde_json::Error,
    },

    /// A child object exists but belongs to someone else, or cannot be adopted.
    #[error("{0}")]
    Ownership(String),

    #[error(
        "multiple Pods ({0}) are controlled by this Sandbox; refusing to choose or create a Pod"
    )]
    MultiplePods(usize),

    #[error("SandboxWarmPool {0:?} not found")]
    WarmPoolNotFound(String),

    #[error("SandboxTemplate {0:?} not found")]
    TemplateNotFound(String),

    #[error("invalid additionalPodMetadata: {0}")]
    InvalidMetadata(String),

    #[error("environment variable injection rejected: {0}")]
    EnvVarsRejected(String),

    #[error("invalid volume claim templates: {0}")]
    VolumeClaimTemplates(String),

    #[error("sandbox not owned by this claim: {0}")]
    SandboxNotOwned(String),

    /// An adoption step was written; the next reconcile sees its result.
    #[error("{0}")]
    Retry(String),

    /// Several of the above, from one reconcile (Go's `errors.Join`).
    #[error("{}", join(.0))]
    Many(Vec<Error>),
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// Collects the errors of several steps: none, one, or [`Error::Many`].
    pub(crate) fn collect(mut errors: Vec<Error>) -> Result<(), Error> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Many(errors)),
        }
    }

    /// This error, or the first of several, that is `kind` (Go's `errors.As`).
    pub(crate) fn find(&self, kind: fn(&Error) -> bool) -> Option<&Error> {
        match self {
            Error::Many(errors) => errors.iter().find_map(|e| e.find(kind)),
            other => kind(other).then_some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_errors_read_like_errors_join() {
        let error =
            Error::collect(vec![Error::Ownership("a".into()), Error::MultiplePods(2)]).unwrap_err();
        assert!(error.to_string().starts_with("a\nmultiple Pods (2)"));
        let found = error.find(|e| matches!(e, Error::MultiplePods(_)));
        assert_eq!(
            found.unwrap().to_string(),
            Error::MultiplePods(2).to_string()
        );
        assert!(Error::collect(Vec::new()).is_ok());
    }
}
