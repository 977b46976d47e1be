//! /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow: the base's lines
//! kept byte for byte, the app user and group appended as `useradd` leaves
//! them, and owner names looked up.

use crate::image::base::FsView;
use crate::spec::validate::User;

#[derive(Debug)]
pub struct Accounts {
    pub passwd: Vec<u8>,
    pub group: Vec<u8>,
    /// Present when the base has /etc/shadow.
    pub shadow: Option<Vec<u8>>,
    /// Present when the base has /etc/gshadow.
    pub gshadow: Option<Vec<u8>>,
    /// Whether the files differ from the base's and must be written.
    pub changed: bool,
}

impl Accounts {
    /// The uid and primary gid of a user name.
    pub fn user(&self, name: &str) -> Option<(u32, u32)> {
        lines(&self.passwd).find_map(|f| {
            (f.first() == Some(&name) && f.len() >= 4)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    }

    pub fn group_id(&self, name: &str) -> Option<u32> {
        lines(&self.group)
            .find_map(|f| (f.first() == Some(&name) && f.len() >= 3).then(|| f[2].parse().ok())?)
    }

    /// The user name for a uid, for `id`-like output.
    pub fn user_name(&self, uid: u32) -> Option<String> {
        let uid = uid.to_string();
        lines(&self.passwd).find_map(|f| (f.len() >= 3 && f[2] == uid).then(|| f[0].to_string()))
    }
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = Vec<&str>> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// Merge the app user into the base's account files. `days` is the
/// creation day (days since 1970) for the shadow entry's last change. Day
/// 0 there means "the password must be changed", which makes `su` refuse,
/// so a build created at 1970-01-01 leaves the field empty (no aging).
pub fn merge(fs: &FsView, user: Option<&User>, days: u64) -> Result<Accounts, String> {
    let base_passwd = fs.passwd.clone();
    let base_group = fs.group.clone();
    let Some(user) = user else {
        return Ok(Accounts {
            passwd: base_passwd.unwrap_or_default(),
            group: base_group.unwrap_or_default(),
            shadow: fs.shadow.clone(),
            gshadow: fs.gshadow.clone(),
            changed: false,
        });
    };
    let home = user.home.as_deref().unwrap_or("/nonexistent");
    let user_line = format!(
        "{}:x:{}:{}::{}:{}",
        user.name, user.uid, user.gid, home, user.shell
    );
    let group_line = format!("{}:x:{}:", user.group, user.gid);

    let passwd = base_passwd.unwrap_or_else(|| b"root:x:0:0:root:/root:/sbin/nologin\n".to_vec());
    let group = base_group.unwrap_or_else(|| b"root:x:0:\n".to_vec());
    let passwd = append_unique(
        passwd,
        &user_line,
        &user.name,
        user.uid,
        2,
        "/etc/passwd",
        "user",
    )?;
    let group = append_unique(
        group,
        &group_line,
        &user.group,
        user.gid,
        2,
        "/etc/group",
        "group",
    )?;
    let lastchg = match days {
        0 => String::new(),
        d => d.to_string(),
    };
    let shadow = fs.shadow.clone().map(|shadow| {
        append_missing(
            shadow,
            &user.name,
            &format!("{}:!:{lastchg}:0:99999:7:::", user.name),
        )
    });
    let gshadow = fs
        .gshadow
        .clone()
        .map(|gshadow| append_missing(gshadow, &user.group, &format!("{}:!::", user.group)));
    Ok(Accounts {
        passwd,
        group,
        shadow,
        gshadow,
        changed: true,
    })
}

/// Append `line` unless the file has a line for `name` already.
fn append_missing(file: Vec<u8>, name: &str, line: &str) -> Vec<u8> {
    let has = lines(&file).any(|f| f.first() == Some(&name));
    match has {
        true => file,
        false => append(file, line),
    }
}

/// Append `line` unless an identical line is there; a different line with
/// the same name or id is a conflict.
fn append_unique(
    file: Vec<u8>,
    line: &str,
    name: &str,
    id: u32,
    id_field: usize,
    path: &str,
    what: &str,
) -> Result<Vec<u8>, String> {
    let id_text = id.to_string();
    for existing in file
        .split(|b| *b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
    {
        let fields: Vec<&str> = existing.split(':').collect();
        let same_name = fields.first() == Some(&name);
        let same_id = fields.get(id_field) == Some(&id_text.as_str());
        if !(same_name || same_id) {
            continue;
        }
        if existing == line {
            return Ok(file);
        }
        return Err(format!(
            "{what} `{name}` ({id}) conflicts with the base's {path} line `{existing}`; change the name or id in [user], or make them match the base exactly"
        ));
    }
    Ok(append(file, line))
}

fn append(mut file: Vec<u8>, line: &str) -> Vec<u8> {
    if !file.is_empty() && !file.ends_with(b"\n") {
        file.push(b'\n');
    }
    file.extend_from_slice(line.as_bytes());
    file.push(b'\n');
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            name: "app".into(),
            uid: 10001,
            group: "app".into(),
            gid: 10001,
            home: Some("/home/app".into()),
            shell: "/sbin/nologin".into(),
            skel: false,
            at: 0..0,
        }
    }

    #[test]
    fn scratch_gets_root_and_app() {
        let a = merge(&FsView::default(), Some(&user()), 20000).unwrap();
        assert_eq!(
            String::from_utf8(a.passwd.clone()).unwrap(),
            "root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001::/home/app:/sbin/nologin\n"
        );
        assert_eq!(
            String::from_utf8(a.group.clone()).unwrap(),
            "root:x:0:\napp:x:10001:\n"
        );
        assert!(a.shadow.is_none());
        assert_eq!(a.user("app"), Some((10001, 10001)));
        assert_eq!(a.group_id("app"), Some(10001));
        assert_eq!(a.user_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn base_lines_kept_byte_for_byte() {
        let fs = FsView {
            passwd: Some(b"root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin".to_vec()),
            group: Some(b"root:x:0:\n".to_vec()),
            shadow: Some(b"root:*:19000:0:99999:7:::\n".to_vec()),
            gshadow: Some(b"root:*::\nshadow:*::".to_vec()),
            ..FsView::default()
        };
        let a = merge(&fs, Some(&user()), 20000).unwrap();
        let passwd = String::from_utf8(a.passwd).unwrap();
        assert!(passwd.starts_with("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\napp:"), "{passwd}");
        assert_eq!(
            String::from_utf8(a.shadow.unwrap()).unwrap(),
            "root:*:19000:0:99999:7:::\napp:!:20000:0:99999:7:::\n"
        );
        assert_eq!(
            String::from_utf8(a.gshadow.unwrap()).unwrap(),
            "root:*::\nshadow:*::\napp:!::\n"
        );
    }

    #[test]
    fn created_at_day_zero_leaves_lastchg_empty() {
        let fs = FsView {
            shadow: Some(b"root:*:19000:0:99999:7:::\n".to_vec()),
            gshadow: Some(b"app:!::\n".to_vec()),
            ..FsView::default()
        };
        let a = merge(&fs, Some(&user()), 0).unwrap();
        assert_eq!(
            String::from_utf8(a.shadow.unwrap()).unwrap(),
            "root:*:19000:0:99999:7:::\napp:!::0:99999:7:::\n"
        );
        // A group the base's gshadow has already is left as it is.
        assert_eq!(a.gshadow.unwrap(), b"app:!::\n");
    }

    #[test]
    fn conflicts_are_errors_unless_identical() {
        let fs = FsView {
            passwd: Some(b"other:x:10001:10001::/:/bin/sh\n".to_vec()),
            ..FsView::default()
        };
        let err = merge(&fs, Some(&user()), 0).unwrap_err();
        assert!(
            err.contains(
                "conflicts with the base's /etc/passwd line `other:x:10001:10001::/:/bin/sh`"
            ),
            "{err}"
        );
        let fs = FsView {
            passwd: Some(b"app:x:10001:10001::/home/app:/sbin/nologin\n".to_vec()),
            group: Some(b"app:x:10001:\n".to_vec()),
            ..FsView::default()
        };
        let a = merge(&fs, Some(&user()), 0).unwrap();
        assert_eq!(a.passwd, b"app:x:10001:10001::/home/app:/sbin/nologin\n");
    }
}
