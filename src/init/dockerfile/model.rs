//! What `kiln init --from` found in the Dockerfile, in kiln's terms:
//! filled by `convert` and `run`, written out by `render`.

#[derive(Debug, Default)]
pub struct Model {
    pub base: String,
    pub base_line: usize,
    /// The stage turned into the spec, e.g. `release (line 12)`.
    pub stage: String,
    pub args: Vec<Arg>,
    pub user: Option<UserOut>,
    pub copies: Vec<CopyOut>,
    pub dirs: Vec<DirOut>,
    pub cfg: Cfg,
    pub health: Option<Health>,
    /// What the spec cannot say, each with its line and what to do.
    pub unsupported: Vec<Unsupported>,
    /// Comments for the spec's header: how something was read.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: String,
    pub value: String,
    pub note: String,
}

#[derive(Debug, Default)]
pub struct UserOut {
    pub line: usize,
    pub name: String,
    pub uid: i64,
    pub group: Option<String>,
    pub gid: Option<i64>,
    pub home: Option<String>,
    /// useradd -m copies the base's /etc/skel into the home.
    pub skel: bool,
    pub shell: Option<String>,
    /// What the spec says that the Dockerfile left to the base's tools.
    pub notes: Vec<String>,
}

#[derive(Debug, Default)]
pub struct CopyOut {
    pub line: usize,
    pub src: String,
    pub image: Option<String>,
    pub dest: String,
    pub owner: Option<String>,
    pub mode: Option<String>,
    pub dir_mode: Option<String>,
    pub exclude: Vec<String>,
    pub note: Option<String>,
}

#[derive(Debug, Default)]
pub struct DirOut {
    pub line: usize,
    pub path: String,
    pub owner: Option<String>,
    pub mode: Option<String>,
}

#[derive(Debug, Default)]
pub struct Cfg {
    pub workdir: Option<String>,
    pub env: Vec<(String, String)>,
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub stop_signal: Option<String>,
    /// USER as written, when it is not [user]'s own.
    pub user: Option<String>,
    /// USER named [user]: kiln's default, its uid:gid.
    pub user_is_default: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
}

#[derive(Debug, Default)]
pub struct Health {
    pub line: usize,
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unsupported {
    pub line: usize,
    /// The instruction or command, as written.
    pub what: String,
    pub why: String,
    pub todo: String,
}

/// What to do about a RUN kiln cannot run.
pub const RUN_TODO: &str = "build it in a builder image and [[copy]] image = \"...\" its output, run it as a local build step before kiln and [[copy]] the result, or use a base that already has what it installs";

/// `pairs` with `key` set to `value`, in place if it was there.
pub fn set(pairs: &mut Vec<(String, String)>, key: String, value: String) {
    match pairs.iter_mut().find(|(k, _)| *k == key) {
        Some(p) => p.1 = value,
        None => pairs.push((key, value)),
    }
}
