//! The model written as a commented kiln.toml. Every string goes through
//! TOML's own quoting and every comment through `shown::escape`, so no
//! Dockerfile text can break out of its value or its comment.

use super::model::*;
use crate::shown::escape;

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A key, bare when TOML allows it.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { s.to_string() } else { q(s) }
}

fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// `code`, with `comment` (escaped) at column 40.
fn line(out: &mut String, code: &str, comment: &str) {
    if comment.is_empty() {
        out.push_str(code);
    } else {
        out.push_str(&format!("{code:<38} # {}", escape(comment)));
    }
    out.push('\n');
}

fn comment(out: &mut String, text: &str) {
    out.push_str(&format!("# {}\n", escape(text)));
}

pub fn render(m: &Model, name: &str, dockerfile: &str) -> String {
    let mut s = String::new();
    comment(
        &mut s,
        &format!(
            "The image of {dockerfile}, stage {}: written by `kiln init --from`.",
            m.stage
        ),
    );
    comment(
        &mut s,
        "Check each value; `kiln check` lists what to harden, `kiln build` writes the image.",
    );
    comment(
        &mut s,
        "kiln runs nothing at build time: what RUN did is below as [user] and [[dir]].",
    );
    if !m.unsupported.is_empty() {
        s.push_str(
            "#\n# Not in this spec (kiln cannot express it); each needs doing another way:\n",
        );
        for u in &m.unsupported {
            comment(&mut s, &format!("  line {}: {}", u.line, u.what));
            comment(&mut s, &format!("    {}: {}", u.why, u.todo));
        }
    }
    if !m.notes.is_empty() {
        s.push_str("#\n# Read with care:\n");
        for n in &m.notes {
            comment(&mut s, &format!("  {n}"));
        }
    }
    s.push_str("\n[image]\n");
    line(
        &mut s,
        &format!("name = {}", q(name)),
        "default: this directory's name",
    );
    line(
        &mut s,
        &format!("base = {}", q(&m.base)),
        &format!("FROM, line {}; pin it by digest", m.base_line),
    );
    line(
        &mut s,
        "format = \"docker\"",
        "podman honours healthchecks only in Docker format",
    );
    if !m.args.is_empty() {
        s.push('\n');
        line(
            &mut s,
            "[args]",
            "${NAME} values; --build-arg NAME=VALUE overrides",
        );
        for a in &m.args {
            line(
                &mut s,
                &format!("{} = {}", key(&a.name), q(&a.value)),
                &a.note,
            );
        }
    }
    if let Some(u) = &m.user {
        s.push('\n');
        for n in &u.notes {
            comment(&mut s, n);
        }
        line(&mut s, "[user]", &format!("RUN, line {}", u.line));
        line(&mut s, &format!("name = {}", q(&u.name)), "");
        line(&mut s, &format!("uid = {}", u.uid), "");
        if let Some(g) = &u.group {
            line(&mut s, &format!("group = {}", q(g)), "");
        }
        if let Some(g) = u.gid {
            line(&mut s, &format!("gid = {g}"), "");
        }
        if let Some(h) = &u.home {
            line(
                &mut s,
                &format!("home = {}", q(h)),
                "created, owned by the user",
            );
            if u.skel {
                line(
                    &mut s,
                    "skel = true",
                    "useradd -m: the base's /etc/skel copied in",
                );
            }
        }
        if let Some(sh) = &u.shell {
            line(&mut s, &format!("shell = {}", q(sh)), "");
        }
    }
    for c in &m.copies {
        s.push('\n');
        if let Some(n) = &c.note {
            comment(&mut s, n);
        }
        line(&mut s, "[[copy]]", &format!("line {}", c.line));
        if let Some(i) = &c.image {
            line(&mut s, &format!("image = {}", q(i)), "");
        }
        line(&mut s, &format!("src = {}", q(&c.src)), "");
        line(&mut s, &format!("dest = {}", q(&c.dest)), "");
        if let Some(o) = &c.owner {
            line(&mut s, &format!("owner = {}", q(o)), "");
        }
        if let Some(mode) = &c.mode {
            line(&mut s, &format!("mode = {}", q(mode)), "--chmod");
        }
        if let Some(mode) = &c.dir_mode {
            line(&mut s, &format!("dir-mode = {}", q(mode)), "--chmod");
        }
        if !c.exclude.is_empty() {
            line(
                &mut s,
                &format!("exclude = {}", list(&c.exclude)),
                "--exclude",
            );
        }
    }
    for d in &m.dirs {
        s.push('\n');
        line(
            &mut s,
            "[[dir]]",
            &format!("RUN mkdir/chown, line {}", d.line),
        );
        line(&mut s, &format!("path = {}", q(&d.path)), "");
        if let Some(o) = &d.owner {
            line(&mut s, &format!("owner = {}", q(o)), "");
        }
        if let Some(mode) = &d.mode {
            line(&mut s, &format!("mode = {}", q(mode)), "");
        }
    }
    config(&mut s, &m.cfg);
    if let Some(h) = &m.health {
        s.push('\n');
        line(
            &mut s,
            "[healthcheck]",
            &format!("HEALTHCHECK, line {}", h.line),
        );
        line(&mut s, &format!("test = {}", list(&h.test)), "");
        for (k, v) in [
            ("interval", &h.interval),
            ("timeout", &h.timeout),
            ("start-period", &h.start_period),
            ("start-interval", &h.start_interval),
        ] {
            if let Some(v) = v {
                line(&mut s, &format!("{k} = {}", q(v)), "");
            }
        }
        if let Some(r) = h.retries {
            line(&mut s, &format!("retries = {r}"), "");
        }
    }
    s
}

fn config(s: &mut String, c: &Cfg) {
    s.push_str("\n[config]\n");
    if let Some(w) = &c.workdir {
        line(s, &format!("workdir = {}", q(w)), "WORKDIR");
    }
    match (&c.user, &c.user_is_default) {
        (Some(u), _) => line(s, &format!("user = {}", q(u)), "USER"),
        (None, Some(u)) => comment(
            s,
            &format!("USER {u}: kiln's default, [user]'s numeric uid:gid"),
        ),
        (None, None) => {}
    }
    if let Some(e) = &c.entrypoint {
        line(s, &format!("entrypoint = {}", list(e)), "ENTRYPOINT");
    }
    if let Some(cmd) = &c.cmd {
        line(s, &format!("cmd = {}", list(cmd)), "CMD");
    }
    if !c.expose.is_empty() {
        line(s, &format!("expose = {}", list(&c.expose)), "EXPOSE");
    }
    if !c.volumes.is_empty() {
        line(s, &format!("volumes = {}", list(&c.volumes)), "VOLUME");
    }
    if let Some(sig) = &c.stop_signal {
        line(s, &format!("stop-signal = {}", q(sig)), "STOPSIGNAL");
    }
    for (table, pairs) in [("env", &c.env), ("labels", &c.labels)] {
        if !pairs.is_empty() {
            s.push_str(&format!("\n[config.{table}]\n"));
            for (k, v) in pairs {
                line(s, &format!("{} = {}", key(k), q(v)), "");
            }
        }
    }
}
