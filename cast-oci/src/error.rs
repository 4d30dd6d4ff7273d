//! The one error type of this crate. Every variant names what failed (the registry, the
//! reference, the file) and, where the user can do something about it, says what; the
//! underlying cause, when there is one, is kept as the `source` so callers can print
//! the whole chain.

use std::path::PathBuf;

/// Everything that can go wrong while resolving a `FROM` source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image reference does not follow `[host[:port]/]repo[:tag][@digest]`.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// What the caller passed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A digest string is malformed or uses an algorithm other than sha256.
    #[error("invalid digest {input:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest {
        /// What was parsed.
        input: String,
    },

    /// The registry could not be reached at all (DNS, refused, TLS, timeout).
    #[error("cannot reach registry {registry}: check the address, that it is running and the network (or build offline with a warm cache)")]
    Unreachable {
        /// Host (and port) of the registry.
        registry: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },

    /// The registry asked for credentials that we do not have or that it rejected.
    #[error("registry {registry} {problem} for {repository} (HTTP 401): set CAST_REGISTRY_USER and CAST_REGISTRY_PASSWORD, or log in so that ~/.docker/config.json (or $DOCKER_CONFIG) has an `auths` entry or a credential helper for {registry}")]
    Unauthorized {
        /// Host (and port) of the registry.
        registry: String,
        /// The repository we asked for.
        repository: String,
        /// "needs credentials" or "rejected the credentials".
        problem: &'static str,
    },

    /// The registry understood who we are and still said no.
    #[error("registry {registry} denied access to {repository} (HTTP 403): check that the account may pull it")]
    Forbidden {
        /// Host (and port) of the registry.
        registry: String,
        /// The repository we asked for.
        repository: String,
    },

    /// The manifest or blob does not exist.
    #[error(
        "{what} not found on registry {registry} (HTTP 404): check the repository name and tag"
    )]
    NotFound {
        /// Host (and port) of the registry.
        registry: String,
        /// e.g. "manifest library/alpine:3.99".
        what: String,
    },

    /// The registry keeps answering 429 Too Many Requests.
    #[error("registry {registry} is rate-limiting requests (HTTP 429) for {what}: wait and try again, or log in (Docker Hub allows more pulls to accounts)")]
    RateLimited {
        /// Host (and port) of the registry.
        registry: String,
        /// What we asked for.
        what: String,
    },

    /// Any other unexpected HTTP status.
    #[error("registry {registry} answered HTTP {status} for {what}")]
    Status {
        /// Host (and port) of the registry.
        registry: String,
        /// The HTTP status code.
        status: u16,
        /// What we asked for.
        what: String,
    },

    /// A transfer broke off after the connection was made.
    #[error("transfer of {what} from registry {registry} failed")]
    Transfer {
        /// Host (and port) of the registry.
        registry: String,
        /// What we were fetching.
        what: String,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },

    /// Reading a response body failed part-way (reset, timeout).
    #[error("reading {what} from registry {registry} was interrupted")]
    Interrupted {
        /// Host (and port) of the registry.
        registry: String,
        /// What we were fetching.
        what: String,
        /// The read error.
        #[source]
        source: std::io::Error,
    },

    /// A manifest larger than any registry accepts.
    #[error("{what} from registry {registry} is larger than {limit} bytes; refusing it")]
    TooLarge {
        /// Host (and port) of the registry.
        registry: String,
        /// What it was.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// Content did not hash to the digest it was asked for by.
    #[error("digest mismatch for {what} from {origin}: expected {expected}, got {actual}; the content is corrupt or was tampered with, so it was discarded (retry, or tell whoever runs {origin})")]
    DigestMismatch {
        /// Registry host or local path the content came from.
        origin: String,
        /// What the content was (manifest, config, layer).
        what: String,
        /// The digest we asked for.
        expected: String,
        /// The digest of what we got.
        actual: String,
    },

    /// An index/manifest list has no entry for the requested platform.
    #[error("{reference} has no image for platform {platform} (it has: {available})")]
    NoMatchingPlatform {
        /// The image.
        reference: String,
        /// The platform that was asked for, e.g. linux/amd64.
        platform: String,
        /// Comma-separated platforms the index has.
        available: String,
    },

    /// A manifest, index or config had a media type or shape we cannot use.
    #[error("unsupported {what} in {origin}: {detail}")]
    Unsupported {
        /// Registry host or local path.
        origin: String,
        /// What the thing was.
        what: String,
        /// Media type or a short description.
        detail: String,
    },

    /// JSON that did not parse.
    #[error("invalid {what} from {origin}")]
    Json {
        /// What the JSON was supposed to be.
        what: String,
        /// Registry host or local path.
        origin: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },

    /// Offline mode was asked for and something is not in the cache.
    #[error("offline: {what} is not in the blob cache {cache}; run once with network access to fill the cache, or use a local source (oci-layout:, docker-archive:)")]
    OfflineMissing {
        /// What was missing (manifest of ref, blob digest).
        what: String,
        /// The cache directory.
        cache: PathBuf,
    },

    /// A local source (OCI layout, docker archive) is missing something or malformed.
    #[error("invalid local image {path}: {reason}")]
    Local {
        /// The directory or archive.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// No cache directory could be chosen.
    #[error("cannot find a cache directory: set CAST_CACHE_DIR or HOME")]
    NoCacheDir,

    /// The docker config file exists but cannot be used.
    #[error("cannot use docker config {path}: {reason}")]
    DockerConfig {
        /// The config.json file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A credential helper (`credsStore` / `credHelpers` of the docker config) is missing,
    /// failed, hung or answered garbage. "Credentials not found" is not this error: it
    /// means an anonymous pull.
    #[error("{helper} {problem} while looking up credentials for registry {registry}: {advice}")]
    CredentialHelper {
        /// The helper binary, e.g. `docker-credential-desktop`.
        helper: String,
        /// The registry the credentials were for.
        registry: String,
        /// What went wrong, e.g. "is not on PATH".
        problem: String,
        /// What to do about it; names the docker config and its key (`credsStore` or the
        /// `credHelpers` entry) that chose the helper.
        advice: String,
    },

    /// A file system operation failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What we tried to do ("create", "read", "rename", ...).
        action: &'static str,
        /// The path it concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same request might succeed (see [`crate::retry`]).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. }
            | Error::Transfer { .. }
            | Error::Interrupted { .. }
            | Error::RateLimited { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
