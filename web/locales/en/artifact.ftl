# artifact
# One artifact's page (artifact.html) and the referrer counts of the repository page.
artifact-detail-title = Artifact { $digest }
artifact-detail-overview = Overview
artifact-detail-repository = Repository
artifact-detail-digest = Digest
artifact-detail-type = Type
artifact-detail-media-type = Media type
artifact-detail-artifact-type = Artifact type
artifact-detail-size = Size
artifact-detail-pushed = Pushed
artifact-detail-subject = Subject
artifact-detail-subject-help = This artifact refers to another one (a signature, an SBOM or an attestation of it).
artifact-detail-tags = Tags
artifact-detail-tag = Tag
artifact-detail-untagged = This artifact has no tags.
artifact-detail-pull = Pull commands
artifact-detail-config = Config
artifact-detail-config-missing = The config blob is not in storage.
artifact-detail-config-too-large = The config is larger than { $limit } and is not shown.
artifact-detail-config-unreadable = The config could not be read from storage. The server log has the details.
artifact-detail-config-invalid = The config is not valid JSON.
artifact-detail-config-other = This is not an image config; its content is not shown.
artifact-detail-os = OS
artifact-detail-os-version = OS version
artifact-detail-architecture = Architecture
artifact-detail-variant = Variant
artifact-detail-created = Created
artifact-detail-author = Author
artifact-detail-user = User
artifact-detail-working-dir = Working directory
artifact-detail-entrypoint = Entrypoint
artifact-detail-cmd = Command
artifact-detail-ports = Exposed ports
artifact-detail-env = Environment
artifact-detail-labels = Labels
artifact-detail-key = Key
artifact-detail-value = Value
artifact-detail-number = No.
artifact-detail-layers = Layers
artifact-detail-layer-count = { $count ->
    [one] One layer
   *[other] { $count } layers
}
artifact-detail-history = Build history
artifact-detail-created-by = Created by
artifact-detail-comment = Comment
artifact-detail-empty-layer = Empty layer
artifact-detail-yes = Yes
artifact-detail-no = No
artifact-detail-no-history = The config has no build history.
artifact-detail-children = Platforms
artifact-detail-children-help = The manifests this index lists, one per platform.
artifact-detail-platform = Platform
artifact-detail-unknown = unknown
artifact-detail-annotations = Annotations
artifact-detail-no-annotations = The manifest has no annotations.
artifact-detail-manifest = Manifest
artifact-detail-truncated = Showing the first { $shown } of { $total }.

referrer-title = Referrers
referrer-help = Signatures, SBOMs and other artifacts whose subject is this one.
referrer-none = No artifact refers to this one.
referrer-count = { $count ->
    [one] one referrer
   *[other] { $count } referrers
}
