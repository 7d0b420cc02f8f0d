//! Artifacts: manifests pushed and deleted, tags, repositories.

use berth_core::manifest::{self, ManifestError, ParsedManifest};
use berth_core::{Digest, DigestAlgorithm, DigestHasher, Reference, RepositoryName};
use berth_meta::{ManifestDelete, ManifestPut, MetaError, NewManifest, TagCreate};

use crate::{EventKind, Initiator, Registry};

/// Why an operation on artifacts did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The manifest cannot be parsed or breaks the spec.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
    /// Pushed by digest, but the bytes have another.
    #[error("the manifest's digest is {actual}, not {expected}")]
    DigestMismatch {
        /// The digest in the request.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },
    /// A blob or manifest it references is not in the repository.
    #[error("the manifest references {0}, which is not in the repository: push it first")]
    MissingReference(Digest),
    /// A reference declares another size than the referenced content has.
    #[error("the manifest gives {digest} a size of {declared} bytes, but it has {actual}")]
    SizeMismatch {
        /// The reference.
        digest: Digest,
        /// Size in the manifest.
        declared: u64,
        /// Size stored.
        actual: u64,
    },
    /// No such manifest (or tag) in the repository.
    #[error("{0} is not in the repository")]
    Unknown(String),
    /// An index in the repository lists the manifest.
    #[error("manifest {digest} is listed by index {index}; delete the index first")]
    ReferencedBy {
        /// The manifest.
        digest: Digest,
        /// The index listing it.
        index: String,
    },
    /// The tag exists and points at another artifact.
    #[error("tag {tag} exists already and points at {digest}")]
    TagExists {
        /// The tag.
        tag: String,
        /// Where it points.
        digest: String,
    },
    /// The metadata store failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// A manifest stored by [`Registry::put_manifest`].
#[derive(Debug, Clone)]
pub struct PushedManifest {
    /// Its digest.
    pub digest: Digest,
    /// The digest of its subject, when it has one (`OCI-Subject`).
    pub subject: Option<Digest>,
}

impl Registry {
    async fn project_id_of(&self, repository: &str) -> Result<Option<i64>, MetaError> {
        let name = berth_core::name::project_of(repository);
        Ok(self.meta.project(name).await?.map(|p| p.id))
    }

    /// Stores a manifest pushed under `reference`: parses it (the media type from
    /// `content_type` and the body must agree), checks a digest reference against the bytes,
    /// and stores it, its references and its tag in one transaction that finds every blob and
    /// manifest it references in the repository with the declared size.
    pub async fn put_manifest(
        &self,
        initiator: &Initiator,
        repository: &RepositoryName,
        reference: &Reference,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<PushedManifest, ArtifactError> {
        let parsed: ParsedManifest = manifest::parse(content_type, body)?;
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = DigestHasher::digest_of(expected.algorithm(), body);
                if &actual != expected {
                    return Err(ArtifactError::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                actual
            }
            Reference::Tag(_) => DigestHasher::digest_of(DigestAlgorithm::Sha256, body),
        };
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        let new = NewManifest {
            digest: &digest,
            media_type: &parsed.media_type,
            artifact_type: parsed.artifact_type.as_deref(),
            subject: parsed.subject.as_ref().map(|s| &s.digest),
            annotations: parsed
                .annotations
                .as_ref()
                .map(|a| serde_json::Value::Object(a.clone()).to_string()),
            content: body,
            blobs: parsed
                .blobs
                .iter()
                .filter(|d| !d.external)
                .map(|d| (&d.digest, d.size))
                .collect(),
            manifests: parsed
                .manifests
                .iter()
                .map(|d| (&d.digest, d.size))
                .collect(),
            tag,
        };
        let project = self.project_id_of(repository.as_str()).await?;
        let kind = EventKind::ArtifactPushed {
            repository: repository.to_string(),
            digest: digest.to_string(),
            tag: tag.map(str::to_owned),
        };
        let put = self
            .change(initiator, project, kind, |m| async move {
                m.put_manifest(repository.as_str(), &new).await
            })
            .await?;
        match put {
            ManifestPut::Stored => {}
            ManifestPut::MissingReference(d) => return Err(ArtifactError::MissingReference(d)),
            ManifestPut::SizeMismatch {
                digest,
                declared,
                actual,
            } => {
                return Err(ArtifactError::SizeMismatch {
                    digest,
                    declared,
                    actual,
                });
            }
        }
        tracing::info!(%repository, %digest, %reference, "manifest stored");
        Ok(PushedManifest {
            digest,
            subject: parsed.subject.map(|s| s.digest),
        })
    }

    /// Deletes a manifest and the tags pointing at it, unless an index in the repository lists
    /// it (refused, and recorded as such).
    pub async fn delete_manifest(
        &self,
        initiator: &Initiator,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<(), ArtifactError> {
        let project = self.project_id_of(repository.as_str()).await?;
        let kind = EventKind::ArtifactDeleted {
            repository: repository.to_string(),
            digest: digest.to_string(),
        };
        let outcome = self
            .change(initiator, project, kind.clone(), |m| async move {
                m.delete_manifest(repository.as_str(), digest).await
            })
            .await?;
        match outcome {
            ManifestDelete::Deleted => {
                tracing::info!(%repository, %digest, "manifest deleted");
                Ok(())
            }
            ManifestDelete::Unknown => Err(ArtifactError::Unknown(digest.to_string())),
            ManifestDelete::ReferencedBy(index) => {
                let refusal = ArtifactError::ReferencedBy {
                    digest: digest.clone(),
                    index,
                };
                self.refused(initiator, project, kind, refusal.to_string())
                    .await?;
                Err(refusal)
            }
        }
    }

    /// Deletes a tag (the artifact stays).
    pub async fn delete_tag(
        &self,
        initiator: &Initiator,
        repository: &RepositoryName,
        tag: &str,
    ) -> Result<(), ArtifactError> {
        let project = self.project_id_of(repository.as_str()).await?;
        let kind = EventKind::TagDeleted {
            repository: repository.to_string(),
            tag: tag.to_owned(),
        };
        let deleted = self
            .change(initiator, project, kind, |m| async move {
                m.delete_tag(repository.as_str(), tag).await
            })
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(ArtifactError::Unknown(format!("tag {tag}")))
        }
    }

    /// Points `tag` at the artifact `digest` of the repository; a tag that exists already is
    /// refused (`TagExists`), as in Harbor.
    pub async fn create_tag(
        &self,
        initiator: &Initiator,
        repository: &RepositoryName,
        tag: &str,
        digest: &str,
    ) -> Result<(), ArtifactError> {
        let project = self.project_id_of(repository.as_str()).await?;
        let kind = EventKind::TagCreated {
            repository: repository.to_string(),
            tag: tag.to_owned(),
        };
        let created = self
            .change(initiator, project, kind, |m| async move {
                m.create_tag(repository.as_str(), tag, digest).await
            })
            .await?;
        match created {
            TagCreate::Created => Ok(()),
            TagCreate::Exists(digest) => Err(ArtifactError::TagExists {
                tag: tag.to_owned(),
                digest,
            }),
            TagCreate::UnknownArtifact => Err(ArtifactError::Unknown(digest.to_owned())),
        }
    }

    /// Deletes a repository with its tags, manifests and blob links (the blobs stay for
    /// garbage collection). Returns whether it had content.
    pub async fn delete_repository(
        &self,
        initiator: &Initiator,
        repository: &RepositoryName,
    ) -> Result<bool, ArtifactError> {
        let project = self.project_id_of(repository.as_str()).await?;
        let kind = EventKind::RepositoryDeleted {
            repository: repository.to_string(),
        };
        Ok(self
            .change(initiator, project, kind, |m| async move {
                m.delete_repository(repository.as_str()).await
            })
            .await?)
    }
}
