//! `[user]`, and the owners (`user:group`) of copies, dirs, files and links.

use super::Span;
use super::validator::Validator;
use crate::error::Result;
use crate::spec::raw::{RawUser, S};

pub struct User {
    pub name: String,
    pub uid: u32,
    pub group: String,
    pub gid: u32,
    pub home: Option<String>,
    pub shell: String,
    /// Copy the base's /etc/skel into `home`.
    pub skel: bool,
    pub at: Span,
}

/// An owner as written: names are resolved against /etc/passwd and /etc/group later.
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    Num(u32),
    Name(String),
}

#[derive(Debug, Clone)]
pub struct Owner {
    pub user: Id,
    pub group: Option<Id>,
    pub text: String,
    pub at: Span,
}

impl Validator {
    pub(super) fn user(&self, raw: &S<RawUser>) -> Result<User> {
        let u = raw.get_ref();
        let name = self.text(&u.name)?;
        check_account_name(&name).map_err(|m| self.err(u.name.span(), m))?;
        let uid = self.id(&u.uid, "uid")?;
        if uid == 0 && *u.uid.get_ref() == 0 {
            return Err(self
                .err(u.uid.span(), "the app user must not be root (uid 0)")
                .with_hint("pick an unprivileged uid such as 10001"));
        }
        let group = match &u.group {
            Some(g) => {
                let group = self.text(g)?;
                check_account_name(&group).map_err(|m| self.err(g.span(), m))?;
                group
            }
            None => name.clone(),
        };
        let gid = match &u.gid {
            Some(g) => self.id(g, "gid")?,
            None => uid,
        };
        let home = match &u.home {
            Some(h) => Some(self.abs_path(h)?),
            None => None,
        };
        let shell = match &u.shell {
            Some(s) => self.abs_path(s)?,
            None => "/sbin/nologin".to_string(),
        };
        for (field, value, at) in [
            ("home", home.as_deref().unwrap_or(""), &u.home),
            ("shell", &shell, &u.shell),
        ] {
            if value.contains(':') {
                let span = at.as_ref().map_or(raw.span(), |v| v.span());
                return Err(self.err(span, format!("user {field} `{value}` must not contain `:`")));
            }
        }
        let skel = match &u.skel {
            Some(s) if *s.get_ref() && home.is_none() => {
                return Err(self
                    .err(s.span(), "skel = true needs a home to copy /etc/skel into")
                    .with_hint("set [user] home, e.g. \"/home/app\""));
            }
            Some(s) => *s.get_ref(),
            None => false,
        };
        Ok(User {
            name,
            uid,
            group,
            gid,
            home,
            shell,
            skel,
            at: raw.span(),
        })
    }

    fn id(&self, value: &S<i64>, what: &str) -> Result<u32> {
        let v = *value.get_ref();
        if !(0..=i64::from(i32::MAX)).contains(&v) {
            return Err(self.err(
                value.span(),
                format!("{what} {v} is out of range 0..=2147483647"),
            ));
        }
        Ok(v as u32)
    }

    pub(super) fn owner(&self, raw: &Option<S<String>>) -> Result<Option<Owner>> {
        let Some(raw) = raw else { return Ok(None) };
        let text = self.text(raw)?;
        let bad = |m: String| {
            self.err(raw.span(), m).with_hint(
                "write `user:group` as names or numbers, e.g. \"app:app\" or \"10001:10001\"",
            )
        };
        if text.matches(':').count() > 1 {
            return Err(bad(format!("owner `{text}` has more than one `:`")));
        }
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text.as_str(), None),
        };
        let user = parse_id(user).map_err(bad)?;
        let group = group.map(parse_id).transpose().map_err(bad)?;
        Ok(Some(Owner {
            user,
            group,
            text,
            at: raw.span(),
        }))
    }
}

fn parse_id(text: &str) -> Result<Id, String> {
    if text.is_empty() {
        return Err("owner has an empty user or group".to_string());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = text
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        if n > i32::MAX as u64 {
            return Err(format!("id {n} is out of range 0..=2147483647"));
        }
        return Ok(Id::Num(n as u32));
    }
    check_account_name(text)?;
    Ok(Id::Name(text.to_string()))
}

fn check_account_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        // Debug form, so a newline in the name cannot break the message in two.
        Err(format!(
            "{name:?} is not a valid user or group name (letters, digits, `_`, `-`, `.`; at most 32)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse() {
        assert_eq!(parse_id("10001").unwrap(), Id::Num(10001));
        assert_eq!(parse_id("app").unwrap(), Id::Name("app".into()));
        assert!(parse_id("a:b").is_err());
        assert!(parse_id("99999999999").is_err());
    }

    #[test]
    fn account_names() {
        assert!(check_account_name("app_user-1.x").is_ok());
        assert!(check_account_name("-app").is_err());
        assert!(check_account_name("a\nb").is_err());
        assert!(check_account_name(&"a".repeat(33)).is_err());
    }
}
