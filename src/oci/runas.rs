//! The uid and gid a container runtime runs an image's `User` as, worked
//! out the way runc's user lookup does it (libcontainer/user, now
//! moby/sys/user: `GetExecUser`), which runc, podman and Docker share.
//! `kiln check` judges this, not the text: `+0`, `-0` and `00` are uid 0,
//! and so is a name that /etc/passwd maps to 0.
//!
//! What that lookup does, and this copies:
//! - `User` is split at `:`; the first two parts are user and group, any
//!   more are ignored. An empty user means uid 0.
//! - A part that Go's `strconv.Atoi` reads (optional `+`/`-`, decimal
//!   digits) is a number; anything else is a name.
//! - A numeric user matches the first /etc/passwd line with that uid, else
//!   is used as is (0..=2^31-1, else the container fails to start), with
//!   gid 0 unless a group is given. A name must be in /etc/passwd.
//! - /etc/passwd lines are trimmed; their uid and gid fields are read with
//!   `Atoi`, and one that does not parse counts as 0.
//! - A group given by number or name sets the gid (a name must be in
//!   /etc/group). With no group, a user found by name or uid gets its
//!   passwd gid, plus every /etc/group line listing it as a member.

/// The process identity a runtime would set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: i64,
    pub gid: i64,
    /// Supplementary groups from /etc/group membership.
    pub groups: Vec<i64>,
    /// The /etc/passwd name the user matched, if any.
    pub name: Option<String>,
}

const MAX_ID: i64 = (1 << 31) - 1;

/// Go's `strconv.Atoi`: an optional sign and ASCII digits, within i64.
pub fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // i64 parses a sign and digits exactly as Atoi does, overflow included.
    s.parse().ok()
}

/// What the runtime does with `user` (a `User` config value) given the
/// image's /etc/passwd and /etc/group (None when the image has none).
/// An error is why the container would fail to start.
pub fn resolve(user: &str, passwd: Option<&[u8]>, group: Option<&[u8]>) -> Result<RunAs, String> {
    let mut parts = user.split(':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let uid_arg = atoi(user_arg);
    let gid_arg = atoi(group_arg);

    let mut run = RunAs {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        name: None,
    };
    let matched = passwd.and_then(|p| {
        passwd_lines(p).find(|u| match (user_arg, uid_arg) {
            ("", _) => u.uid == 0,
            (_, Some(n)) => u.uid == n,
            (name, None) => u.name == name,
        })
    });
    match matched {
        Some(u) => {
            run.uid = u.uid;
            run.gid = u.gid;
            run.name = Some(u.name);
        }
        None if user_arg.is_empty() => {}
        None => match uid_arg {
            None => {
                return Err(match passwd {
                    Some(_) => format!("`{user_arg}` is not a user in the image's /etc/passwd"),
                    None => format!("`{user_arg}` is a name, but the image has no /etc/passwd"),
                });
            }
            Some(n) if !(0..=MAX_ID).contains(&n) => {
                return Err(format!("uid {n} is outside 0..=2147483647"));
            }
            Some(n) => run.uid = n,
        },
    }

    if group_arg.is_empty() {
        if let (Some(name), Some(g)) = (&run.name, group) {
            run.groups = group_lines(g)
                .filter(|g| g.members.iter().any(|m| m == name))
                .map(|g| g.gid)
                .collect();
        }
        return Ok(run);
    }
    let found = group.and_then(|g| {
        group_lines(g).find(|g| match gid_arg {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        })
    });
    run.gid = match (found, gid_arg) {
        (Some(g), _) => g.gid,
        (None, None) => {
            return Err(match group {
                Some(_) => format!("`{group_arg}` is not a group in the image's /etc/group"),
                None => format!("`{group_arg}` is a name, but the image has no /etc/group"),
            });
        }
        (None, Some(n)) if !(0..=MAX_ID).contains(&n) => {
            return Err(format!("gid {n} is outside 0..=2147483647"));
        }
        (None, Some(n)) => n,
    };
    Ok(run)
}

/// Whether `text` is a uid or gid as tools other than runc read it too:
/// digits only, with no sign and no leading zero.
pub fn is_plain_number(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

struct PasswdLine {
    name: String,
    uid: i64,
    gid: i64,
}

struct GroupLine {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Lines as Go's bufio.Scanner gives them: split at `\n`, a final `\r` dropped.
fn scan_lines(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes.split(|b| *b == b'\n').map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        String::from_utf8_lossy(l).into_owned()
    })
}

fn passwd_lines(bytes: &[u8]) -> impl Iterator<Item = PasswdLine> + '_ {
    scan_lines(bytes).filter_map(|line| {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        Some(PasswdLine {
            name: f[0].to_string(),
            uid: f.get(2).and_then(|s| atoi(s)).unwrap_or(0),
            gid: f.get(3).and_then(|s| atoi(s)).unwrap_or(0),
        })
    })
}

fn group_lines(bytes: &[u8]) -> impl Iterator<Item = GroupLine> + '_ {
    scan_lines(bytes).filter_map(|line| {
        if line.is_empty() {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        Some(GroupLine {
            name: f[0].to_string(),
            gid: f.get(2).and_then(|s| atoi(s)).unwrap_or(0),
            members: f
                .get(3)
                .filter(|m| !m.is_empty())
                .map(|m| m.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
        toor:x:0:0::/root:/bin/sh\n\
        app:x:10001:10001::/home/app:/sbin/nologin\n\
        bad:x:ten:10001::/:/sbin/nologin\n\
        plus:x:+10002:10002::/:/sbin/nologin\n  spaced:x:10003:0::/:/bin/sh  \r\n\
        member:x:10004:10004::/:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:member\nwheel:x:00:\napp:x:10001:\nmember:x:10004:\n";

    fn run(user: &str) -> Result<RunAs, String> {
        resolve(user, Some(PASSWD), Some(GROUP))
    }

    fn ids(user: &str) -> (i64, i64) {
        let r = run(user).unwrap_or_else(|e| panic!("{user}: {e}"));
        (r.uid, r.gid)
    }

    #[test]
    fn atoi_reads_what_go_reads() {
        for (s, n) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("00", 0),
            ("+010", 10),
            ("-5", -5),
        ] {
            assert_eq!(atoi(s), Some(n), "{s}");
        }
        for s in [
            "",
            "+",
            "-",
            " 0",
            "0 ",
            "0x0",
            "1_000",
            "0.0",
            "٠",
            "+-1",
            "١٢",
            "99999999999999999999",
        ] {
            assert_eq!(atoi(s), None, "{s:?}");
        }
    }

    #[test]
    fn every_spelling_of_zero_is_root() {
        for user in [
            "", "0", "+0", "-0", "00", "+00", "0:0", "root", "toor", ":", "0:", ":10001",
        ] {
            assert_eq!(ids(user).0, 0, "{user:?}");
        }
        // Names given without a passwd line for them fail; numbers do not need one.
        assert_eq!(resolve("+0", None, None).unwrap().uid, 0);
        assert_eq!(resolve("", None, None).unwrap().uid, 0);
    }

    #[test]
    fn a_passwd_uid_that_does_not_parse_is_zero() {
        assert_eq!(ids("bad"), (0, 10001));
        assert_eq!(ids("plus"), (10002, 10002));
        assert_eq!(ids("spaced"), (10003, 0));
    }

    #[test]
    fn numbers_match_passwd_by_value() {
        assert_eq!(ids("10001"), (10001, 10001));
        assert_eq!(ids("+10001").0, 10001);
        assert_eq!(run("010001").unwrap().name.as_deref(), Some("app"));
        // No line: the number as is, and gid 0.
        assert_eq!(ids("20000"), (20000, 0));
        assert_eq!(ids("20000:20000"), (20000, 20000));
        // Extra parts are ignored, as runc ignores them.
        assert_eq!(ids("10001:10001:0"), (10001, 10001));
    }

    #[test]
    fn groups_by_name_number_or_membership() {
        assert_eq!(ids("app:root"), (10001, 0));
        assert_eq!(ids("app:wheel"), (10001, 0));
        assert_eq!(ids("app:0"), (10001, 0));
        assert_eq!(ids("app:-0"), (10001, 0));
        assert_eq!(ids("app:"), (10001, 10001));
        assert_eq!(ids("10001:app"), (10001, 10001));
        let member = run("member").unwrap();
        assert_eq!((member.gid, member.groups), (10004, vec![0]));
        // An explicit group drops the membership groups.
        assert!(run("member:member").unwrap().groups.is_empty());
    }

    #[test]
    fn what_the_runtime_refuses() {
        for (user, msg) in [
            ("ghost", "`ghost` is not a user in the image's /etc/passwd"),
            (
                "app:ghosts",
                "`ghosts` is not a group in the image's /etc/group",
            ),
            ("-1", "uid -1 is outside 0..=2147483647"),
            ("2147483648", "uid 2147483648 is outside"),
            ("app:-2", "gid -2 is outside"),
            (" 0", "` 0` is not a user"),
            ("0x0", "`0x0` is not a user"),
        ] {
            let err = run(user).unwrap_err();
            assert!(err.contains(msg), "{user:?}: {err}");
        }
        assert!(
            resolve("app", None, None)
                .unwrap_err()
                .contains("no /etc/passwd")
        );
    }

    #[test]
    fn plain_numbers() {
        assert!(is_plain_number("0") && is_plain_number("10001"));
        for s in ["", "+0", "-0", "00", "010001", "1e3"] {
            assert!(!is_plain_number(s), "{s}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for user in ["::::", ":", "\0", "ü:ü", "a:b:c:d", "\n"] {
            let _ = resolve(user, Some(b"::\n:\n\n\r\n:::::::\n"), Some(b"::\n:,,\n"));
        }
    }
}
