//! Where images record their packages: dpkg, apk and Python metadata
//! files, and os-release for the distro. The SBOM reads these, and the base
//! index keeps their bytes, so the one list of paths lives here.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Db {
    /// `/var/lib/dpkg/status`.
    Dpkg,
    /// `/var/lib/dpkg/status.d/NAME`, as distroless writes one per package.
    DpkgRecord,
    /// `/lib/apk/db/installed`.
    Apk,
    /// `.../site-packages/NAME.dist-info/METADATA` (or `dist-packages`), or
    /// `NAME.egg-info/PKG-INFO`, or a `NAME.egg-info` file.
    Python,
    /// `/etc/os-release`, `/usr/lib/os-release`: the distro in deb and apk purls.
    OsRelease,
}

/// Whether the file at `path` (an absolute, cleaned path in the image) is a
/// package database, and which kind. Every base file the SBOM reads passes
/// here, and the base index keeps these files' bytes (`contents::kept`).
pub fn package_db(path: &str) -> Option<Db> {
    match path {
        "/var/lib/dpkg/status" => return Some(Db::Dpkg),
        "/lib/apk/db/installed" => return Some(Db::Apk),
        "/etc/os-release" | "/usr/lib/os-release" => return Some(Db::OsRelease),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/var/lib/dpkg/status.d/") {
        // distroless keeps `NAME.md5sums` beside each record.
        let record = !name.is_empty() && !name.contains('/') && !name.ends_with(".md5sums");
        return record.then_some(Db::DpkgRecord);
    }
    // NAME.dist-info/METADATA (wheels), NAME.egg-info/PKG-INFO or a
    // NAME.egg-info file (setuptools, as Debian's python3-* packages have).
    let (dir, suffix) = match path.rsplit_once('/')? {
        (dir, "METADATA") => (dir, ".dist-info"),
        (dir, "PKG-INFO") => (dir, ".egg-info"),
        _ => (path, ".egg-info"),
    };
    let (parent, info) = dir.rsplit_once('/')?;
    let site = parent.ends_with("/site-packages") || parent.ends_with("/dist-packages");
    (site && info.len() > suffix.len() && info.ends_with(suffix)).then_some(Db::Python)
}
