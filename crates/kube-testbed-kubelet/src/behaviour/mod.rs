//! What a pod does on this kubelet: its `testbed.claude-sandbox.dev/…` annotations merged over the
//! testbed-wide rules that match it (the pod's own annotations win).

pub(crate) mod rules;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use crate::log_script::LogScript;
pub(crate) use rules::Rule;

/// Prefix of the behaviour annotations.
pub(crate) const PREFIX: &str = "testbed.claude-sandbox.dev/";

const DEFAULT_START_DELAY: Duration = Duration::from_millis(200);
const DEFAULT_RUN_TIME: Duration = Duration::from_secs(1);
/// Exit code of a crash loop or a failing log script unless `exit-code` says otherwise.
const DEFAULT_FAILURE_CODE: i32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Behaviour {
    /// Pending/ContainerCreating → Running.
    pub start_delay: Duration,
    /// Running → Ready.
    pub ready_delay: Duration,
    pub never_ready: bool,
    pub image_pull_failure: bool,
    pub crash_loop: bool,
    pub exit_code: Option<i32>,
    /// How long a container that exits runs (at least as long as its log script).
    pub run_time: Duration,
    pub log_script: Option<LogScript>,
    /// Container port → local port on 127.0.0.1 (`forward-<containerPort>`).
    pub forwards: BTreeMap<u16, u16>,
    /// Overrides the kubelet's stand-ins setting for this pod.
    pub stand_ins: Option<bool>,
    /// With stand-ins, whether code-server's and sshd's are started.
    pub stand_in_code_server: bool,
    pub stand_in_sshd: bool,
    /// Programs the pod's image lacks: they are not on its `PATH`.
    pub missing_programs: BTreeSet<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            start_delay: DEFAULT_START_DELAY,
            ready_delay: Duration::ZERO,
            never_ready: false,
            image_pull_failure: false,
            crash_loop: false,
            exit_code: None,
            run_time: DEFAULT_RUN_TIME,
            log_script: None,
            forwards: BTreeMap::new(),
            stand_ins: None,
            stand_in_code_server: true,
            stand_in_sshd: true,
            missing_programs: BTreeSet::new(),
        }
    }
}

impl Behaviour {
    /// The behaviour of pod `namespace/pod`: matching rules in order, then the pod's annotations.
    /// Values that do not parse are reported and left at their defaults.
    pub fn resolve(
        namespace: &str,
        pod: &str,
        annotations: &BTreeMap<String, String>,
        rules: &[Rule],
    ) -> (Self, Vec<String>) {
        let mut settings = BTreeMap::new();
        let rule_settings = rules
            .iter()
            .filter(|rule| rule.matches(namespace, pod))
            .flat_map(|rule| &rule.annotations)
            .map(|(name, value)| (name.strip_prefix(PREFIX).unwrap_or(name), value));
        let pod_settings = annotations
            .iter()
            .filter_map(|(name, value)| Some((name.strip_prefix(PREFIX)?, value)));
        for (name, value) in rule_settings.chain(pod_settings) {
            settings.insert(name.to_owned(), value.clone());
        }
        Self::from_settings(&settings)
    }

    /// Builds a behaviour from annotation names without the prefix.
    fn from_settings(settings: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut behaviour = Self::default();
        let mut warnings = Vec::new();
        for (name, value) in settings {
            let value = value.trim();
            let parsed = match name.as_str() {
                "start-delay" => parse_duration(value).map(|d| behaviour.start_delay = d),
                "ready-delay" => parse_duration(value).map(|d| behaviour.ready_delay = d),
                "run-seconds" => parse_duration(value).map(|d| behaviour.run_time = d),
                "never-ready" => parse_bool(value).map(|b| behaviour.never_ready = b),
                "image-pull-failure" => parse_bool(value).map(|b| behaviour.image_pull_failure = b),
                "crash-loop" => parse_bool(value).map(|b| behaviour.crash_loop = b),
                "stand-ins" => parse_bool(value).map(|b| behaviour.stand_ins = Some(b)),
                "stand-in-code-server" => {
                    parse_bool(value).map(|b| behaviour.stand_in_code_server = b)
                }
                "stand-in-sshd" => parse_bool(value).map(|b| behaviour.stand_in_sshd = b),
                "missing-programs" => {
                    parse_programs(value).map(|names| behaviour.missing_programs = names)
                }
                "exit-code" => value
                    .parse::<u8>()
                    .map(|code| behaviour.exit_code = Some(i32::from(code)))
                    .map_err(|_| "an exit code 0-255".to_owned()),
                "log-script" => {
                    LogScript::parse(value).map(|script| behaviour.log_script = Some(script))
                }
                other => match other.strip_prefix("forward-") {
                    Some(port) => parse_forward(port, value).map(|(from, to)| {
                        behaviour.forwards.insert(from, to);
                    }),
                    None => Err("a known behaviour".to_owned()),
                },
            };
            if let Err(expected) = parsed {
                warnings.push(format!(
                    "{PREFIX}{name}: {value:?} is not {expected}; ignored"
                ));
            }
        }
        (behaviour, warnings)
    }

    /// The exit code every run of the main containers ends with, or `None` if they keep running.
    pub fn exit_code(&self) -> Option<i32> {
        let failing_script = self.log_script.as_ref().is_some_and(LogScript::fails);
        if self.crash_loop || failing_script {
            Some(self.exit_code.unwrap_or(DEFAULT_FAILURE_CODE))
        } else {
            self.exit_code
        }
    }
}

/// `500ms`, `2s`, `1m 30s`; a bare number is seconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "a duration like 500ms or 2s";
    humantime::parse_duration(value).or_else(|_| {
        value
            .parse::<f64>()
            .ok()
            .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
            .ok_or_else(|| EXPECTED.to_owned())
    })
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("true or false".to_owned()),
    }
}

/// `tar, bash,sshd`: program names, separated by commas.
fn parse_programs(value: &str) -> Result<BTreeSet<String>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            if name.contains('/') || name.contains(char::is_whitespace) {
                Err("program names separated by commas".to_owned())
            } else {
                Ok(name.to_owned())
            }
        })
        .collect()
}

fn parse_forward(container_port: &str, local_port: &str) -> Result<(u16, u16), String> {
    match (container_port.parse::<u16>(), local_port.parse::<u16>()) {
        (Ok(from), Ok(to)) if from != 0 && to != 0 => Ok((from, to)),
        _ => Err("forward-<containerPort>: <localPort> with ports 1-65535".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    fn rule(namespace: &str, prefix: Option<&str>, pairs: &[(&str, &str)]) -> Rule {
        Rule {
            namespace: namespace.to_owned(),
            pod_prefix: prefix.map(str::to_owned),
            annotations: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn defaults_without_annotations() {
        let (behaviour, warnings) = Behaviour::resolve("ns", "pod", &BTreeMap::new(), &[]);
        assert_eq!(behaviour, Behaviour::default());
        assert_eq!(behaviour.start_delay, Duration::from_millis(200));
        assert_eq!(behaviour.exit_code(), None);
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_annotation_parses() {
        let (behaviour, warnings) = Behaviour::resolve(
            "ns",
            "pod",
            &annotations(&[
                ("start-delay", "500ms"),
                ("ready-delay", "2s"),
                ("never-ready", "true"),
                ("image-pull-failure", "TRUE"),
                ("crash-loop", "false"),
                ("exit-code", "3"),
                ("run-seconds", "1.5"),
                ("log-script", "0 one\n100 two"),
                ("forward-8080", "18080"),
                ("stand-ins", "false"),
                ("stand-in-code-server", "false"),
                ("stand-in-sshd", "False"),
                ("missing-programs", "tar, bash,claude,"),
            ]),
            &[],
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(behaviour.start_delay, Duration::from_millis(500));
        assert_eq!(behaviour.ready_delay, Duration::from_secs(2));
        assert!(behaviour.never_ready && behaviour.image_pull_failure && !behaviour.crash_loop);
        assert_eq!(behaviour.exit_code(), Some(3));
        assert_eq!(behaviour.run_time, Duration::from_millis(1500));
        assert!(
            matches!(behaviour.log_script, Some(LogScript::Inline(ref lines)) if lines.len() == 2)
        );
        assert_eq!(behaviour.forwards, BTreeMap::from([(8080, 18080)]));
        assert_eq!(behaviour.stand_ins, Some(false));
        assert!(!behaviour.stand_in_code_server && !behaviour.stand_in_sshd);
        assert_eq!(
            behaviour.missing_programs,
            BTreeSet::from(["bash".to_owned(), "claude".to_owned(), "tar".to_owned()])
        );
    }

    #[test]
    fn stand_ins_run_and_programs_are_there_unless_told_otherwise() {
        let (behaviour, _) = Behaviour::resolve(
            "ns",
            "pod",
            &annotations(&[("missing-programs", "")]),
            &[rule("ns", None, &[("stand-in-sshd", "false")])],
        );
        assert!(behaviour.stand_in_code_server && !behaviour.stand_in_sshd);
        assert!(behaviour.missing_programs.is_empty());
        let (_, warnings) = Behaviour::resolve(
            "ns",
            "pod",
            &annotations(&[
                ("missing-programs", "/usr/bin/tar"),
                ("stand-in-sshd", "no"),
            ]),
            &[],
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }

    #[test]
    fn pod_annotations_win_over_rules_and_later_rules_over_earlier() {
        let rules = [
            rule("ns", None, &[("start-delay", "2s"), ("ready-delay", "1s")]),
            rule(
                "ns",
                Some("web-"),
                &[("ready-delay", "3s"), ("crash-loop", "true")],
            ),
            rule("other", None, &[("never-ready", "true")]),
            rule("ns", None, &[(&format!("{PREFIX}exit-code"), "4")]),
        ];
        let (web, _) = Behaviour::resolve(
            "ns",
            "web-1",
            &annotations(&[("start-delay", "10ms")]),
            &rules,
        );
        assert_eq!(web.start_delay, Duration::from_millis(10));
        assert_eq!(web.ready_delay, Duration::from_secs(3));
        assert!(web.crash_loop && !web.never_ready);
        assert_eq!(
            web.exit_code(),
            Some(4),
            "rule annotations may carry the prefix"
        );

        let (db, _) = Behaviour::resolve("ns", "db-1", &BTreeMap::new(), &rules);
        assert_eq!(
            (db.start_delay, db.ready_delay, db.crash_loop),
            (Duration::from_secs(2), Duration::from_secs(1), false)
        );
    }

    #[test]
    fn unrelated_annotations_are_ignored_and_bad_values_reported() {
        let mut pod = annotations(&[
            ("start-delay", "soon"),
            ("exit-code", "300"),
            ("forward-x", "1"),
            ("colour", "red"),
        ]);
        pod.insert("other.example/start-delay".to_owned(), "5s".to_owned());
        let (behaviour, warnings) = Behaviour::resolve("ns", "pod", &pod, &[]);
        assert_eq!(behaviour, Behaviour::default());
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("start-delay") && w.contains("soon"))
        );
    }

    #[test]
    fn crash_loops_and_failing_scripts_exit_with_one_by_default() {
        let crash = Behaviour {
            crash_loop: true,
            ..Behaviour::default()
        };
        assert_eq!(crash.exit_code(), Some(1));
        let (failing, _) = Behaviour::resolve(
            "ns",
            "p",
            &annotations(&[("log-script", "envbuilder-error")]),
            &[],
        );
        assert_eq!(failing.exit_code(), Some(1));
        let (succeeding, _) = Behaviour::resolve(
            "ns",
            "p",
            &annotations(&[("log-script", "envbuilder")]),
            &[],
        );
        assert_eq!(succeeding.exit_code(), None);
    }
}
