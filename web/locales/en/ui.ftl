# Berth's web UI, English. Every key here must exist in zh-CN.ftl too (a test checks), and
# every key a template uses must exist in both.
app-name = Berth
nav-main = Main
nav-projects = Projects
nav-sign-in = Sign in
nav-sign-out = Sign out
nav-language = Language
nav-skip = Skip to content
signed-in-as = Signed in as { $user }

login-title = Sign in to Berth
login-username = Username
login-password = Password
login-submit = Sign in
login-failed = Invalid username or password.
login-throttled = Too many failed sign-ins. Try again in { $seconds ->
    [one] one second
   *[other] { $seconds } seconds
}.
login-robot = Robot accounts cannot sign in here; use their secret with docker login.
login-missing = Enter both your username and your password.
login-stale = Your sign-in form expired. Please try again.

projects-title = Projects
projects-search = Search projects
projects-search-submit = Search
projects-name = Name
projects-access = Access
projects-repositories = Repositories
projects-created = Created
projects-public = Public
projects-private = Private
projects-empty = No projects yet.
projects-none-match = No project matches “{ $query }”.
projects-count = { $count ->
    [one] One project
   *[other] { $count } projects
}

project-title = Project { $name }
project-repositories = Repositories
project-repository-artifacts = Artifacts
project-repository-updated = Last push
project-empty = This project has no repositories yet. Push one with:
project-push-hint = docker push { $registry }/{ $project }/IMAGE:TAG

paging-previous = Previous
paging-next = Next
paging-position = Page { $page } of { $pages }

error-title = Something went wrong
error-not-found = This page does not exist, or you may not see it.
error-forbidden = You may not do this.
error-csrf = This form was sent without a valid security token. Reload the page and try again.
error-unavailable = The registry cannot reach its database right now. Try again shortly.
error-bad-request = The registry cannot do this with what was sent. Check the values and try again.
error-internal = The registry could not answer. The server log has the details under request { $request }.
error-back = Back to the projects

project-new = New project
project-new-name = Project name
project-new-name-help = Lower-case letters and digits, separated by single “.”, “_” or “-”.
project-new-public = Public (anyone may pull)
project-new-submit = Create project
project-new-exists = A project with this name exists already.

repository-title = Repository { $name }
repository-artifacts = Artifacts
repository-tags = Tags
repository-digest = Digest
repository-size = Size
repository-type = Type
repository-pushed = Pushed
repository-untagged = untagged
repository-empty = This repository has no artifacts.
repository-pull = Pull command
repository-pull-by-digest = Pull by digest
repository-copy = Copy
repository-platforms = { $count ->
    [one] one platform
   *[other] { $count } platforms
}
type-image = Image
type-index = Image index
type-other = Artifact

tab-repositories = Repositories
tab-members = Members
members-title = Members of { $name }
members-name = Member
members-kind = Kind
members-role = Role
members-user = User
members-group = LDAP group
members-empty = This project has no members.
members-add = Add a member
members-add-name = User name or LDAP group DN
members-add-submit = Add
members-change = Change role
members-remove = Remove
members-remove-confirm = Remove { $name } from this project?
members-unknown-user = There is no user named “{ $name }”.
members-exists = { $name } is a member already; change the role in the list.
role-projectAdmin = Project admin
role-maintainer = Maintainer
role-developer = Developer
role-guest = Guest
role-limitedGuest = Limited guest

tab-robots = Robot accounts
robots-title = Robot accounts of { $name }
robots-new = New robot account
robots-name = Name
robots-description = Description
robots-duration = Lifetime in days
robots-duration-help = Empty for 30 days; -1 never expires.
robots-duration-invalid = The lifetime is a number of days from 1 to 36500, or -1 for never.
robots-permissions = Permissions
robots-create = Create robot account
robots-expires = Expires
robots-state = State
robots-actions = Actions
robots-never = Never
robots-enabled = Enabled
robots-disabled = Disabled
robots-refresh = New secret
robots-disable = Disable
robots-enable = Enable
robots-delete = Delete
robots-delete-confirm = Delete { $name }? Clients using it stop working at once.
robots-empty = This project has no robot accounts.
robots-secret-title = Secret of { $name }
robots-secret-once = Copy it now: it is shown only once. Use it with docker login as the password of this robot account.
action-pull = Pull
action-push = Push
action-delete = Delete
nav-language-apply = Apply

artifact-select = Select
artifact-delete = Delete
artifact-delete-confirm = Delete artifact { $digest } and its tags?
artifact-delete-selected = Delete selected
artifact-delete-selected-confirm = Delete the selected artifacts and their tags?
artifact-untag = Remove tag
artifact-untag-confirm = Remove tag { $tag }?
artifact-new-tag = New tag
artifact-add-tag = Add tag
artifact-tag-invalid = That is not a valid tag
artifact-tag-exists = That tag exists already on another artifact; remove it there first.
artifact-none-selected = Select the artifacts to delete first.
artifact-in-index = An image index in this repository lists that artifact; delete the index first.

tab-logs = Logs
logs-title = Audit log
logs-project-title = Logs of { $name }
logs-user = User
logs-operation = Operation
logs-resource = Resource
logs-from = From
logs-to = To
logs-any = Any
logs-filter = Filter
logs-time = Time
logs-address = Address
logs-outcome = Outcome
logs-success = Success
logs-failure = Refused
logs-empty = No entries.
logs-count = { $count ->
    [one] One entry
   *[other] { $count } entries
}
logs-bad-date = Dates are written YYYY-MM-DD.
logs-bad-operation = Choose an operation from the list.
op-create = Create
op-update = Update
op-delete = Delete
op-pull = Pull
op-login = Sign in
op-logout = Sign out

tab-settings = Settings
settings-title = Settings of { $name }
settings-save = Save
settings-saved = Saved.
settings-delete-title = Delete this project
settings-delete-help = A project can be deleted once it has no repositories; its members and robot accounts go with it.
settings-delete = Delete project
settings-delete-confirm = Delete project { $name }? This cannot be undone.
settings-not-empty = The project still has { $count ->
    [one] one repository
   *[other] { $count } repositories
}; delete them first.

nav-account = My account
account-title = My account
account-profile = Profile
account-email = E-mail
account-realname = Full name
account-comment = Comment
account-password = Password
account-old-password = Current password
account-new-password = New password
account-password-help = 8 to 128 characters, with an upper-case letter, a lower-case letter and a digit.
account-change-password = Change password
account-directory-user = Your account comes from the directory (LDAP): change your password there.
account-password-weak = The new password is too weak: 8 to 128 characters, with an upper-case letter, a lower-case letter and a digit.
account-password-same = The new password must differ from the current one.
account-password-wrong = The current password is wrong.
