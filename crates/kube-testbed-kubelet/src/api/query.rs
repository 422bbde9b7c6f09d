//! Query parameters of kubelet API requests.

use hyper::Uri;

pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub fn of(uri: &Uri) -> Self {
        let pairs = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes());
        Self(
            pairs
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let name = name.to_owned();
        self.0
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// Whether any of `names` (the same flag under its API and kubelet names) is `true` or `1`.
    pub fn flag(&self, names: &[&str]) -> bool {
        names
            .iter()
            .filter_map(|name| self.get(name))
            .any(|value| value == "1" || value.eq_ignore_ascii_case("true"))
    }

    /// `name` parsed, or a message for a 400.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| format!("invalid value {value:?} for query parameter {name}"))
            })
            .transpose()
    }
}
