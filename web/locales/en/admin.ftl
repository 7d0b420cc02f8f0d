# Administration: users, system robot accounts, jobs, configuration.
nav-admin = Administration
admin-tab-users = Users
admin-tab-robots = Robot accounts
admin-tab-audit = Audit log
admin-tab-jobs = Jobs
admin-tab-configuration = Configuration

users-title = Users
users-search = Search users
users-new = New user
users-username = User name
users-password = Password
users-make-admin = Administrator
users-create = Create user
users-count = { $count ->
    [one] One user
   *[other] { $count } users
}
users-role = Role
users-role-admin = Administrator
users-role-user = User
users-you = (you)
users-directory = Directory (LDAP)
users-admin = Make administrator
users-unadmin = Revoke administrator
users-disable = Disable
users-enable = Enable
users-delete = Delete
users-delete-confirm = Delete user { $user }? Their memberships go with the account.
users-new-password = New password for { $user }
users-reset-password = Set password
users-none-match = No user name contains “{ $query }”.
users-name-invalid = A user name has 1 to 255 characters, no spaces, none of : , " ~ # % $, and does not start with robot$.
users-exists = A user with this name exists already.
users-directory-user = { $user } is a directory (LDAP) user: their password is changed in the directory.
users-not-self = You may not change this on your own account; ask another administrator.

robots-system-title = System robot accounts
robots-system-empty = There are no system robot accounts.
robots-projects = Projects
robots-projects-help = Project names separated by spaces or commas, or * for every project, present and future.
robots-projects-missing = Name at least one project, or * for every project.
robots-all-projects = Every project
robots-name-invalid = A robot name has 1 to 128 lower-case letters and digits, separated by single . _ or -.
robots-project-unknown = There is no project { $project }.
robots-exists = A robot account with this name exists already.

jobs-title = Jobs
jobs-queues = Queues
jobs-kind = Kind
jobs-pending = Pending
jobs-running = Running
jobs-waiting = Oldest waiting
jobs-seconds = { $count ->
    [one] one second
   *[other] { $count } seconds
}
jobs-paused = Paused
jobs-active = Active
jobs-pause = Pause
jobs-resume = Resume
jobs-stop = Stop
jobs-stop-kind-confirm = Stop every pending and running job of { $kind }?
jobs-nodes = Nodes
jobs-node = Node
jobs-host = Host
jobs-workers = Workers
jobs-heartbeat = Last heartbeat
jobs-no-nodes = No node has reported in the last five minutes.
jobs-schedules = Schedules
jobs-schedule = Schedule
jobs-cron = When
jobs-next = Next run
jobs-last = Last run
jobs-no-schedules = There are no schedules.
jobs-executions = Executions
jobs-execution = Execution
jobs-trigger = Started by
jobs-trigger-manual = Manually
jobs-trigger-schedule = Schedule
jobs-trigger-event = Event
jobs-tasks = Tasks
jobs-task = Task
jobs-task-counts = { $total } in all, { $succeeded } succeeded, { $failed } failed
jobs-started = Started
jobs-ended = Ended
jobs-no-executions = Nothing has run yet.
jobs-status-error = Failed
jobs-status-running = Running
jobs-status-stopped = Stopped
jobs-status-success = Succeeded
jobs-execution-title = Execution #{ $id }
jobs-stop-execution = Stop execution
jobs-stop-execution-confirm = Stop every unfinished task of execution #{ $id }?
jobs-stop-job-confirm = Stop task #{ $id }?
jobs-attempts = Attempts
jobs-state-pending = Pending
jobs-state-running = Running
jobs-state-succeeded = Succeeded
jobs-state-failed = Failed
jobs-state-stopped = Stopped
jobs-stopping = stopping
jobs-more-tasks = { $count ->
    [one] One more task is not shown.
   *[other] { $count } more tasks are not shown.
}
jobs-log-title = Log of task #{ $id }
jobs-log-empty = This task has logged nothing.

config-title = Configuration
config-help = Changes apply on every node within seconds. A setting pinned in the configuration file or the environment can only be changed there.
config-section-auth = Authentication
config-section-projects = Projects
config-section-tokens = Tokens
config-auth-off = Authentication is off on this registry (auth.enabled): these settings apply once it is on.
config-auth_mode = Authentication mode
config-choice-db_auth = Local accounts
config-choice-ldap_auth = Local accounts and LDAP
config-ldap_url = LDAP URL (ldap:// or ldaps://)
config-ldap_starttls = Use StartTLS on ldap://
config-ldap_verify_cert = Verify the server's certificate
config-ldap_search_dn = Search DN (empty: anonymous search)
config-ldap_search_password = Search password
config-ldap_base_dn = Base DN of users
config-ldap_filter = User filter
config-ldap_uid = User name attribute
config-ldap_group_base_dn = Base DN of groups (empty: no groups)
config-ldap_group_search_filter = Group filter
config-ldap_group_membership_attribute = Group membership attribute
config-ldap_group_admin_dn = DN of the administrators' group
config-ldap_timeout = Timeout in seconds
config-project_creation_restriction = Who may create projects
config-choice-everyone = Every signed-in user
config-choice-adminonly = Administrators only
config-token_expiration = Token lifetime in minutes (1 to 1440)
config-secret-kept = Stored; leave empty to keep it
config-secret-help = Leave empty to keep the stored password.
config-pinned = Pinned by { $place }.
config-invalid = { $field }: this value is not allowed.
config-ldap-incomplete = The LDAP mode needs an ldap:// or ldaps:// URL, a base DN and a user name attribute.
config-ping = Test connection
config-ping-ok = The directory answered: the connection, the search account and the base DN work.
config-ping-failed = The directory test failed:
