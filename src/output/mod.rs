//! Where a built image goes: an OCI image `layout`, a docker-`archive`, a
//! registry (`push`, and `index` for one tag over per-platform pushes), and
//! the plain files beside them (`file`: --tar, --digest-file, stdout), and
//! the signatures, SBOMs and attestations pushed beside an image (`attach`).

pub mod archive;
pub mod attach;
pub mod file;
pub mod index;
pub mod layout;
pub mod load;
pub mod push;
