//! The parts of a RUN that kiln writes itself: `groupadd`/`useradd`,
//! Alpine's `addgroup`/`adduser`, `mkdir -p` and `chown`/`chmod` of what
//! they made. Everything else in the chain is a [`Step::Other`].

use super::shell::{chmod, chown, mkdir, options};
use super::words::words;

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Group {
        name: String,
        gid: Option<i64>,
        system: bool,
    },
    User(User),
    Mkdir {
        paths: Vec<String>,
        mode: Option<String>,
    },
    Chown {
        owner: String,
        paths: Vec<String>,
        recursive: bool,
    },
    Chmod {
        mode: String,
        paths: Vec<String>,
    },
    /// `set -e`, `true`: nothing to write.
    Nothing,
    /// A command kiln cannot write, as text, and why.
    Other {
        text: String,
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    pub name: String,
    pub uid: Option<i64>,
    /// `-g`/`-G` (Alpine): a group name or number.
    pub group: Option<String>,
    pub home: Option<String>,
    /// The home directory is created.
    pub create_home: bool,
    pub shell: Option<String>,
    pub system: bool,
    /// Alpine's adduser rather than Debian's useradd.
    pub alpine: bool,
    /// `-N`: no group of its own.
    pub no_user_group: bool,
    /// Supplementary groups (`-G` of useradd), which kiln does not write.
    pub groups: Option<String>,
}

/// What one command of a RUN chain does.
pub fn step(text: &str) -> Step {
    let w = words(text, None);
    let other = |why: &str| Step::Other {
        text: text.to_string(),
        why: why.to_string(),
    };
    if text.contains(['$', '`', '>', '<', '*', '?', '(', ')']) {
        return other("uses shell expansion, redirection or globs");
    }
    let Some(prog) = w.first() else {
        return Step::Nothing;
    };
    let prog = prog.rsplit('/').next().unwrap_or(prog);
    let args = &w[1..];
    let got = match prog {
        "set" | "true" | ":" => Ok(Step::Nothing),
        "groupadd" => groupadd(args),
        "addgroup" => addgroup(args),
        "useradd" => useradd(args),
        "adduser" => adduser(args),
        "mkdir" => mkdir(args),
        "chown" => chown(args),
        "chmod" => chmod(args),
        _ => Err("a command kiln does not run".to_string()),
    };
    got.unwrap_or_else(|why| other(&why))
}

/// A step, or why the command is not one kiln writes.
pub type Got = Result<Step, String>;

fn number(v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .map_err(|_| format!("`{v}` is not a number"))
}

fn one_name(rest: &[String], what: &str) -> Result<String, String> {
    match rest {
        [name] => Ok(name.clone()),
        _ => Err(format!("expected one {what} name")),
    }
}

fn groupadd(args: &[String]) -> Got {
    let (opts, rest) = options(args, &["-g", "--gid"], &["-r", "--system", "-f", "--force"])?;
    let mut g = (one_name(&rest, "group")?, None, false);
    for (f, v) in opts {
        match f.as_str() {
            "-g" | "--gid" => g.1 = Some(number(&v)?),
            "-r" | "--system" => g.2 = true,
            _ => {}
        }
    }
    Ok(Step::Group {
        name: g.0,
        gid: g.1,
        system: g.2,
    })
}

fn addgroup(args: &[String]) -> Got {
    let (opts, rest) = options(args, &["-g", "--gid"], &["-S", "--system"])?;
    if rest.len() == 2 {
        return Err("adds a user to a second group, which kiln's [user] does not write".into());
    }
    let mut g = (one_name(&rest, "group")?, None, false);
    for (f, v) in opts {
        match f.as_str() {
            "-g" | "--gid" => g.1 = Some(number(&v)?),
            _ => g.2 = true,
        }
    }
    Ok(Step::Group {
        name: g.0,
        gid: g.1,
        system: g.2,
    })
}

fn useradd(args: &[String]) -> Got {
    let with = [
        "-u",
        "--uid",
        "-g",
        "--gid",
        "-s",
        "--shell",
        "-d",
        "--home-dir",
        "--home",
        "-G",
        "--groups",
        "-c",
        "--comment",
    ];
    let bare = [
        "-m",
        "--create-home",
        "-M",
        "--no-create-home",
        "-r",
        "--system",
        "-N",
        "--no-user-group",
        "-U",
        "--user-group",
        "-l",
        "--no-log-init",
    ];
    let (opts, rest) = options(args, &with, &bare)?;
    let mut u = User {
        name: one_name(&rest, "user")?,
        ..User::default()
    };
    for (f, v) in opts {
        match f.as_str() {
            "-u" | "--uid" => u.uid = Some(number(&v)?),
            "-g" | "--gid" => u.group = Some(v),
            "-s" | "--shell" => u.shell = Some(v),
            "-d" | "--home-dir" | "--home" => u.home = Some(v),
            "-G" | "--groups" => u.groups = Some(v),
            "-m" | "--create-home" => u.create_home = true,
            "-M" | "--no-create-home" => u.create_home = false,
            "-r" | "--system" => u.system = true,
            "-N" | "--no-user-group" => u.no_user_group = true,
            _ => {}
        }
    }
    Ok(Step::User(u))
}

fn adduser(args: &[String]) -> Got {
    let with = [
        "-u",
        "--uid",
        "-G",
        "--ingroup",
        "-s",
        "--shell",
        "-h",
        "--home",
        "-g",
        "--gecos",
        "-k",
        "--gid",
    ];
    let bare = [
        "-S",
        "--system",
        "-D",
        "--disabled-password",
        "--disabled-login",
        "-H",
        "--no-create-home",
        "--group",
    ];
    let (opts, rest) = options(args, &with, &bare)?;
    if rest.len() == 2 {
        return Err("adds a user to a second group, which kiln's [user] does not write".into());
    }
    let mut u = User {
        name: one_name(&rest, "user")?,
        create_home: true,
        alpine: true,
        ..User::default()
    };
    for (f, v) in opts {
        match f.as_str() {
            "-u" | "--uid" => u.uid = Some(number(&v)?),
            "-G" | "--ingroup" | "--gid" => u.group = Some(v),
            "-s" | "--shell" => u.shell = Some(v),
            "-h" | "--home" => u.home = Some(v),
            "-H" | "--no-create-home" => u.create_home = false,
            "-S" | "--system" => u.system = true,
            _ => {}
        }
    }
    Ok(Step::User(u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::dockerfile::shell::commands;

    #[test]
    fn debian_and_alpine() {
        let Step::User(u) =
            step("useradd -u 10001 -g appgroup -m -d /home/app -s /sbin/nologin app")
        else {
            panic!()
        };
        assert_eq!(
            (u.uid, u.group.as_deref(), u.home.as_deref(), u.create_home),
            (Some(10001), Some("appgroup"), Some("/home/app"), true)
        );
        let Step::User(u) = step("useradd --system --gid appuser --no-create-home appuser") else {
            panic!()
        };
        assert!(u.system && !u.create_home && u.group.as_deref() == Some("appuser"));
        let Step::User(u) = step("adduser -D -u 10001 -G appgroup -s /sbin/nologin appuser") else {
            panic!()
        };
        assert!(u.alpine && u.create_home && u.uid == Some(10001));
        let Step::User(u) = step("adduser -SDH app") else {
            panic!()
        };
        assert!(u.system && !u.create_home);
        assert_eq!(
            step("groupadd --gid=1000 app"),
            Step::Group {
                name: "app".into(),
                gid: Some(1000),
                system: false
            }
        );
        assert_eq!(
            step("addgroup -S app"),
            Step::Group {
                name: "app".into(),
                gid: None,
                system: true
            }
        );
        assert!(matches!(step("addgroup app wheel"), Step::Other { .. }));
        assert!(matches!(step("useradd --badflag x"), Step::Other { .. }));
        assert!(matches!(step("useradd -u $UID x"), Step::Other { .. }));
    }

    #[test]
    fn odd_inputs() {
        for s in [
            "",
            "-",
            "useradd",
            "useradd -u",
            "adduser -",
            "mkdir",
            "chown",
            "chmod 7",
            "groupadd -gx a",
            "é -é",
            "useradd -ué x",
            "useradd -éu x",
        ] {
            let _ = step(s);
            let _ = commands(s);
        }
    }
}
