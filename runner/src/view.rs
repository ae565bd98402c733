//! How containers are shown: `ps` rows (docker's columns, human times,
//! `--format json` objects) and `inspect` documents (docker's shape:
//! `State.Status`, `State.ExitCode`, `State.OOMKilled`, `Config`,
//! `HostConfig`, `Mounts`, `NetworkSettings.Ports`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::command::display_command;
use crate::container::{Container, Status};
use crate::mounts::VolumeSource;
use crate::ports::display_ports;
use crate::signal::signal_name;

/// A duration as docker words it ("Less than a second", "About a minute",
/// "3 hours", "2 weeks").
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let minutes = s / 60;
    let hours = (s + 1800) / 3600;
    match () {
        _ if s < 1 => "Less than a second".to_string(),
        _ if s == 1 => "1 second".to_string(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

fn since(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    human_duration((now - t).num_seconds())
}

/// The STATUS column: `Up 5 seconds`, `Exited (0) 3 minutes ago`,
/// `Created`; an OOM kill is said.
pub fn status_text(c: &Container, now: DateTime<Utc>) -> String {
    let s = &c.state;
    match s.status {
        Status::Created => "Created".to_string(),
        Status::Starting => "Starting".to_string(),
        Status::Running => match s.started_at {
            Some(t) => format!("Up {}", since(t, now)),
            None => "Up".to_string(),
        },
        Status::Exited => {
            let code = s
                .exit_code
                .map_or_else(|| "unknown".to_string(), |c| c.to_string());
            let mut text = match s.finished_at {
                Some(t) => format!("Exited ({code}) {} ago", since(t, now)),
                None => format!("Exited ({code})"),
            };
            if s.oom_killed {
                text.push_str(" (OOM killed)");
            }
            text
        }
    }
}

/// One line of `ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsRow {
    pub id: String,
    pub image: String,
    pub command: String,
    pub created: String,
    pub status: String,
    pub ports: String,
    pub names: String,
}

impl PsRow {
    pub fn of(c: &Container, now: DateTime<Utc>, truncate: bool) -> PsRow {
        PsRow {
            id: if truncate {
                c.short_id().to_string()
            } else {
                c.id().to_string()
            },
            image: c.config.image.name.clone(),
            command: display_command(&c.config.argv, truncate),
            created: format!("{} ago", since(c.config.created, now)),
            status: status_text(c, now),
            ports: display_ports(&c.state.ports),
            names: c.name().to_string(),
        }
    }
}

/// The `ps` table: docker's headers, columns padded to their widest cell
/// plus three spaces.
pub fn ps_table(rows: &[PsRow]) -> String {
    let headers = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let cells: Vec<[&str; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.as_str(),
                &r.image,
                &r.command,
                &r.created,
                &r.status,
                &r.ports,
                &r.names,
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str; 7]| {
        let mut l = String::new();
        for (i, (cell, w)) in cols.iter().zip(widths).enumerate() {
            l.push_str(cell);
            if i + 1 < cols.len() {
                l.push_str(&" ".repeat(w - cell.chars().count() + 3));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&headers);
    for row in &cells {
        line(row);
    }
    out
}

/// The `ps --format json` object of one container (docker's keys, plus
/// `ExitCode` and `OOMKilled`).
pub fn ps_json(c: &Container, now: DateTime<Utc>) -> Value {
    let row = PsRow::of(c, now, false);
    json!({
        "ID": c.short_id(),
        "Image": row.image,
        "Command": row.command,
        "CreatedAt": c.config.created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
        "RunningFor": row.created,
        "Status": row.status,
        "State": c.state.status.to_string(),
        "Ports": row.ports,
        "Names": row.names,
        "Labels": c.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Networks": c.config.network.to_string(),
        "Mounts": c.config.volumes.iter().map(|v| match &v.source {
            VolumeSource::Named(n) => n.clone(),
            VolumeSource::Bind(p) => p.display().to_string(),
            VolumeSource::Anonymous => String::new(),
        }).collect::<Vec<_>>().join(","),
        "ExitCode": c.state.exit_code,
        "OOMKilled": c.state.oom_killed,
    })
}

fn time_or_zero(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
}

/// The `inspect` document of a container, shaped like docker's.
pub fn inspect_json(c: &Container) -> Value {
    let cfg = &c.config;
    let st = &c.state;
    let running = st.status == Status::Running;
    let mounts: Vec<Value> = cfg
        .volumes
        .iter()
        .map(|v| {
            let (typ, name, source) = match &v.source {
                VolumeSource::Bind(p) => ("bind", None, p.display().to_string()),
                VolumeSource::Named(n) => (
                    "volume",
                    Some(n.clone()),
                    c.dir
                        .parent()
                        .and_then(|d| d.parent())
                        .map(|r| {
                            r.join("volumes")
                                .join(n)
                                .join("_data")
                                .display()
                                .to_string()
                        })
                        .unwrap_or_default(),
                ),
                VolumeSource::Anonymous => ("volume", None, String::new()),
            };
            json!({
                "Type": typ,
                "Name": name,
                "Source": source,
                "Destination": v.target,
                "RW": !v.read_only,
            })
        })
        .chain(cfg.tmpfs.iter().map(|t| {
            json!({"Type": "tmpfs", "Source": "", "Destination": t.target, "RW": true,
                   "Options": t.options})
        }))
        .collect();
    let mut ports = serde_json::Map::new();
    for p in &cfg.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let bindings: Vec<Value> = st
            .ports
            .iter()
            .filter(|b| b.container_port == p.container_port && b.protocol == p.protocol)
            .map(|b| json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}))
            .collect();
        ports.insert(key, Value::Array(bindings));
    }
    let (path, args) = match cfg.argv.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    json!({
        "Id": cfg.id,
        "Created": cfg.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "Path": path,
        "Args": args,
        "State": {
            "Status": st.status.to_string(),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": st.sandbox.as_ref().filter(|_| running).map_or(0, |h| h.init_pid),
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": time_or_zero(st.started_at),
            "FinishedAt": time_or_zero(st.finished_at),
        },
        "Image": cfg.image.id,
        "Name": format!("/{}", cfg.name),
        "RestartCount": 0,
        "Config": {
            "Hostname": cfg.hostname,
            "User": cfg.user,
            "Tty": cfg.tty,
            "OpenStdin": cfg.open_stdin,
            "Env": cfg.env,
            "Cmd": cfg.argv,
            "Image": cfg.image.name,
            "WorkingDir": cfg.working_dir,
            "Labels": cfg.labels,
            "StopSignal": signal_name(cfg.stop_signal),
            "StopTimeout": cfg.stop_timeout,
        },
        "HostConfig": {
            "NetworkMode": cfg.network.to_string(),
            "AutoRemove": cfg.auto_remove,
            "Memory": cfg.limits.memory.unwrap_or(0),
            "NanoCpus": cfg.limits.milli_cpus.map_or(0, |m| m * 1_000_000),
            "PidsLimit": cfg.limits.pids,
            "Binds": cfg.volumes.iter().filter_map(|v| match &v.source {
                VolumeSource::Bind(p) => Some(format!("{}:{}{}", p.display(), v.target,
                    if v.read_only { ":ro" } else { "" })),
                VolumeSource::Named(n) if !v.anonymous => Some(format!("{n}:{}{}", v.target,
                    if v.read_only { ":ro" } else { "" })),
                _ => None,
            }).collect::<Vec<_>>(),
        },
        "Mounts": mounts,
        "NetworkSettings": {"Ports": ports},
        "LogPath": c.dir.join(crate::containers::LOG_FILE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ContainerState;
    use crate::containers::tests::sample_config;

    #[test]
    fn docker_human_durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    fn container(state: ContainerState) -> Container {
        let mut config = sample_config(&format!("ab{}", "0".repeat(62)));
        config.name = "web".into();
        Container {
            config,
            state,
            dir: "/r/containers/x".into(),
        }
    }

    #[test]
    fn statuses() {
        let now = Utc::now();
        let mut s = ContainerState::created();
        assert_eq!(status_text(&container(s.clone()), now), "Created");
        s.status = Status::Running;
        s.started_at = Some(now - chrono::Duration::seconds(5));
        assert_eq!(status_text(&container(s.clone()), now), "Up 5 seconds");
        s.status = Status::Exited;
        s.exit_code = Some(42);
        s.finished_at = Some(now - chrono::Duration::seconds(120));
        assert_eq!(
            status_text(&container(s.clone()), now),
            "Exited (42) 2 minutes ago"
        );
        s.exit_code = Some(137);
        s.oom_killed = true;
        assert!(status_text(&container(s), now).ends_with("(OOM killed)"));
    }

    #[test]
    fn table_is_padded_like_docker() {
        let now = Utc::now();
        let row = PsRow::of(&container(ContainerState::created()), now, true);
        let table = ps_table(&[row]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("CONTAINER ID   IMAGE     COMMAND   CREATED"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("ab0000000000   busybox   \"true\"    "),
            "{table}"
        );
        assert!(lines[1].ends_with("web"));
    }

    #[test]
    fn inspect_has_dockers_state_fields() {
        let mut s = ContainerState::created();
        s.status = Status::Exited;
        s.exit_code = Some(137);
        s.oom_killed = true;
        let v = inspect_json(&container(s));
        assert_eq!(v["State"]["Status"], "exited");
        assert_eq!(v["State"]["ExitCode"], 137);
        assert_eq!(v["State"]["OOMKilled"], true);
        assert_eq!(v["Name"], "/web");
        assert_eq!(v["Config"]["StopSignal"], "SIGTERM");
        assert_eq!(v["Path"], "true");
    }
}
