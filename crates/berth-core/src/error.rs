//! The error codes of the OCI Distribution Specification (and the few extra ones Docker's
//! distribution defined that clients know). The HTTP status for each lives in the API crate.

/// A wire error code, rendered in the `{"errors":[{"code": …}]}` envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The blob is not known to the registry (in this repository).
    BlobUnknown,
    /// The blob upload encountered an error and can no longer proceed.
    BlobUploadInvalid,
    /// The upload session is not known to the registry.
    BlobUploadUnknown,
    /// The digest did not match the content, or is not a valid digest.
    DigestInvalid,
    /// A blob or manifest referenced by the manifest is not in the repository.
    ManifestBlobUnknown,
    /// The manifest is invalid: bad JSON, unknown media type, bad descriptors.
    ManifestInvalid,
    /// The manifest is not known to the registry.
    ManifestUnknown,
    /// The repository name is not valid.
    NameInvalid,
    /// The repository is not known to the registry.
    NameUnknown,
    /// The content length or a declared size does not match the content.
    SizeInvalid,
    /// The tag is not valid.
    TagInvalid,
    /// Authentication is required.
    Unauthorized,
    /// Access to the resource is denied.
    Denied,
    /// The operation is not supported, or refused by policy.
    Unsupported,
    /// Too many requests.
    TooManyRequests,
    /// A `Range` or `Content-Range` that cannot be satisfied.
    RangeInvalid,
    /// The `n` pagination parameter is not a valid number.
    PaginationNumberInvalid,
    /// The registry cannot serve the request right now (a dependency is down).
    Unavailable,
    /// An unexpected server-side failure; details are in the server log.
    Unknown,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid => "SIZE_INVALID",
            Self::TagInvalid => "TAG_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
            Self::RangeInvalid => "RANGE_INVALID",
            Self::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Self::Unavailable => "UNAVAILABLE",
            Self::Unknown => "UNKNOWN",
        }
    }
}
