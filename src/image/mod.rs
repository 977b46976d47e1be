//! Reading images: a base or any image kiln is asked about (scratch, an
//! OCI layout, a docker-archive, or one `pull`ed from a registry into the
//! cache), and its filesystem as a map held in memory (`fsview`), which no
//! image-controlled name ever leaves, with the bytes of the few files kiln
//! reads (`contents`, including the package databases `packages` names);
//! the map is kept in the cache per base (`index`).

pub mod base;
pub mod contents;
pub mod decode;
pub mod fsview;
pub mod index;
pub mod inspect;
pub mod packages;
pub mod paths;
pub mod pull;
