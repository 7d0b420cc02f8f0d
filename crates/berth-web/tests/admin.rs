//! The administration pages in process: users, system robot accounts and jobs, each for
//! system administrators only, with their refusals.

#![allow(clippy::unwrap_used)]

mod support;

use axum::http::{StatusCode, header};
use berth_testkit::app::{ADMIN, ADMIN_PASSWORD};
use support::{Browser, project, user};

/// The id of user `name`.
async fn user_id(b: &Browser, name: &str) -> i64 {
    b.app
        .registry
        .meta()
        .user(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no user {name}"))
        .id
}

#[tokio::test]
async fn only_administrators_reach_the_administration() {
    let mut b = Browser::start().await;
    user(&b.app, "dev").await;
    for path in [
        "/admin/users",
        "/admin/robots",
        "/admin/jobs",
        "/admin/jobs/executions/1",
    ] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: sign in first");
        assert!(
            r.headers[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/login?next=")
        );
    }
    b.sign_in("dev", "User-pass-123").await;
    let projects = b.get("/projects").await;
    assert!(
        !projects.html.contains("href=\"/admin/users\""),
        "no administration link for a user"
    );
    let token = projects.token();
    for path in ["/admin/users", "/admin/robots", "/admin/jobs"] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.html.contains("You may not do this."), "{path}");
    }
    let forged = [
        ("_csrf", token.as_str()),
        ("username", "mallory"),
        ("password", "Mallory-pass-1"),
        ("admin", "on"),
    ];
    assert_eq!(
        b.post("/admin/users", &forged).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(
        b.app
            .registry
            .meta()
            .user("mallory")
            .await
            .unwrap()
            .is_none()
    );
    let dev = user_id(&b, "dev").await.to_string();
    let r = b
        .post(&format!("/admin/users/{dev}/admin"), &[("_csrf", &token)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "no one makes themselves admin"
    );
    assert!(
        !b.app
            .registry
            .meta()
            .user("dev")
            .await
            .unwrap()
            .unwrap()
            .sysadmin
    );
    let r = b
        .post("/admin/jobs/queues/count/pause", &[("_csrf", &token)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn administrators_create_change_and_delete_users() {
    let mut b = Browser::start().await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("href=\"/admin/users\""),
        "the layout links here"
    );
    assert!(page.html.contains("(you)"));
    let me = user_id(&b, ADMIN).await;
    assert!(
        !page.html.contains(&format!("/admin/users/{me}/")),
        "no changes offered on one's own account"
    );
    let token = page.token();
    let create = |name: &str, password: &str| {
        vec![
            ("_csrf", token.clone()),
            ("username", name.to_owned()),
            ("password", password.to_owned()),
            ("realname", "<i>Carol</i>".to_owned()),
        ]
    };

    // Refusals, next to the form, in the viewer's language; nothing is created.
    let r = b
        .post_owned("/admin/users", &create("carol", "short"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("id=\"new-user-error\""), "{}", r.html);
    assert!(r.html.contains("value=\"carol\""), "the name is kept");
    let r = b
        .post_owned("/admin/users", &create("robot$carol", "Carol-pass-123"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("does not start with robot$"), "{}", r.html);
    assert!(b.app.registry.meta().user("carol").await.unwrap().is_none());

    let r = b
        .post_owned("/admin/users", &create("carol", "Carol-pass-123"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let listed = b.get("/admin/users?q=carol").await;
    assert!(listed.html.contains("carol") && listed.html.contains("&lt;i&gt;Carol"));
    assert!(listed.html.contains("One user"), "{}", listed.html);
    let r = b
        .post_owned("/admin/users", &create("carol", "Carol-pass-123"))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.html.contains("exists already"));

    let carol = user_id(&b, "carol").await;
    let act = |action: &str| format!("/admin/users/{carol}/{action}");
    let token_only = [("_csrf", token.clone())];
    for (action, check) in [("admin", true), ("unadmin", false)] {
        let r = b.post_owned(&act(action), &token_only).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}");
        let u = b.app.registry.meta().user("carol").await.unwrap().unwrap();
        assert_eq!(u.sysadmin, check, "{action}");
    }
    let r = b.post_owned(&act("disable"), &token_only).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut carol_browser = b.another();
    let refused = carol_browser.sign_in("carol", "Carol-pass-123").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "disabled");
    let r = b.post_owned(&act("enable"), &token_only).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    let weak = [("_csrf", token.clone()), ("password", "weak".to_owned())];
    let r = b.post_owned(&act("password"), &weak).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("role=\"alert\""));
    let strong = [
        ("_csrf", token.clone()),
        ("password", "Carol-new-456".to_owned()),
    ];
    let r = b.post_owned(&act("password"), &strong).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let signed = carol_browser.sign_in("carol", "Carol-new-456").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.html);

    // One's own account, by a forged form: refused, with the reason.
    let r = b
        .post_owned(&format!("/admin/users/{me}/disable"), &token_only)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("on your own account"), "{}", r.html);
    assert!(
        !b.app
            .registry
            .meta()
            .user(ADMIN)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    // Without the form's token, or on no such user or action.
    let r = b.post(&act("delete"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for path in [
        "/admin/users/999999/delete".to_owned(),
        "/admin/users/x/delete".to_owned(),
        act("promote"),
    ] {
        let r = b.post_owned(&path, &token_only).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }

    let r = b.post_owned(&act("delete"), &token_only).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(b.app.registry.meta().user("carol").await.unwrap().is_none());

    // Every change is in the audit log, by the administrator.
    b.app.registry.flush_pulls().await.unwrap();
    let log = b.get("/admin/audit?resource=carol").await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(
        log.html.contains("href=\"/admin/jobs\""),
        "administration tabs"
    );
    for operation in ["Create", "Update", "Delete"] {
        let cell = format!("<td class=\"nowrap\">{operation}</td>");
        assert!(log.html.contains(&cell), "{operation}: {}", log.html);
    }
}

#[tokio::test]
async fn system_robots_hold_permissions_in_named_projects_or_all() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    project(&b.app, "ops", false).await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/admin/robots").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("There are no system robot accounts."));
    let token = page.token();
    let form = |name: &str, projects: &str| {
        [
            ("_csrf", token.clone()),
            ("name", name.to_owned()),
            ("projects", projects.to_owned()),
            ("pull", "on".to_owned()),
        ]
    };
    for (name, projects, says) in [
        ("CI", "team", "lower-case letters and digits"),
        ("ci", "", "Name at least one project"),
        ("ci", "team nosuch", "There is no project nosuch."),
    ] {
        let r = b.post_owned("/admin/robots", &form(name, projects)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name} {projects}");
        assert!(r.html.contains(says), "{says}: {}", r.html);
    }
    let mut too_long = form("ci", "team").to_vec();
    too_long.push(("duration", "99999".to_owned()));
    let r = b.post_owned("/admin/robots", &too_long).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.html.contains("a number of days from 1 to 36500"),
        "{}",
        r.html
    );
    let made = b
        .post_owned("/admin/robots", &form("ci", "team, ops"))
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    let marker = "<code id=\"robot-secret\">";
    let at = made.html.find(marker).expect("the secret") + marker.len();
    let secret = made.html[at..at + made.html[at..].find('<').unwrap()].to_owned();
    assert_eq!(
        b.v2_status("robot$ci", &secret, "/v2/team/app/tags/list")
            .await,
        StatusCode::NOT_FOUND,
        "pull granted in team: the repository is just missing"
    );
    let again = b.post_owned("/admin/robots", &form("ci", "team")).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.html.contains("exists already"));

    let all = b.post_owned("/admin/robots", &form("all", "*")).await;
    assert_eq!(all.status, StatusCode::OK);
    // A project robot is not a system robot: not listed here, not changed from here.
    let project_robot = b
        .post(
            "/projects/team/robots",
            &[
                ("_csrf", token.as_str()),
                ("name", "deploy"),
                ("pull", "on"),
            ],
        )
        .await;
    assert_eq!(project_robot.status, StatusCode::OK);
    let list = b.get("/admin/robots").await;
    assert!(list.html.contains("robot$ci") && list.html.contains("robot$all"));
    assert!(list.html.contains("Every project") && list.html.contains("ops:"));
    assert!(!list.html.contains("robot$team+deploy"));
    let app = b.app.clone();
    let meta = app.registry.meta();
    let deploy = meta.robot("robot$team+deploy").await.unwrap().unwrap();
    let r = b
        .post(
            &format!("/admin/robots/{}/disable", deploy.id),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!meta.robot_by_id(deploy.id).await.unwrap().unwrap().disabled);

    let ci = meta.robot("robot$ci").await.unwrap().unwrap();
    let r = b
        .post(
            &format!("/admin/robots/{}/disable", ci.id),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.v2_status("robot$ci", &secret, "/v2/team/app/tags/list")
            .await,
        StatusCode::UNAUTHORIZED,
        "disabled"
    );
    let r = b
        .post(
            &format!("/admin/robots/{}/delete", ci.id),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(meta.robot("robot$ci").await.unwrap().is_none());
}

#[tokio::test]
async fn administrators_read_and_stop_jobs() {
    let mut b = Browser::start().await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let app = b.app.clone();
    let registry = &app.registry;
    let execution = registry
        .start_job(
            &berth_registry::Initiator::system(),
            berth_registry::jobs::COUNT,
            &serde_json::json!({"steps": 3}),
        )
        .await
        .unwrap();
    let page = b.get("/admin/jobs").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    for kind in berth_registry::jobs::KINDS {
        assert!(
            page.html.contains(&format!("<code>{kind}</code>")),
            "{kind}"
        );
    }
    assert!(
        page.html
            .contains(&format!("/admin/jobs/executions/{execution}"))
    );
    let token = page.token();

    let r = b
        .post(
            "/admin/jobs/queues/count/pause",
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let paused = b.get("/admin/jobs").await;
    assert!(paused.html.contains("/admin/jobs/queues/count/resume"));
    let r = b
        .post(
            "/admin/jobs/queues/nosuch/pause",
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown kind");

    let detail = b.get(&format!("/admin/jobs/executions/{execution}")).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.html.contains("{&quot;steps&quot;:3}"),
        "{}",
        detail.html
    );
    assert!(detail.html.contains("This task has logged nothing."));
    let jobs = registry
        .meta()
        .list_jobs(
            &berth_meta::JobFilter {
                execution_id: Some(execution),
                ..Default::default()
            },
            berth_meta::Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let job = jobs.items[0].id;
    let r = b
        .post(
            &format!("/admin/jobs/jobs/{job}/stop"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/admin/jobs/executions/{execution}?job={job}").as_str()
    );
    let stopped = registry.meta().job(job).await.unwrap().unwrap();
    assert_eq!(stopped.state, berth_meta::JobState::Stopped);
    let detail = b.get(&format!("/admin/jobs/executions/{execution}")).await;
    assert!(detail.html.contains("Stopped"));
    assert!(!detail.html.contains("/stop\""), "nothing left to stop");

    for path in [
        "/admin/jobs/executions/999999",
        "/admin/jobs/executions/x",
        &format!("/admin/jobs/executions/{execution}?job=999999"),
    ] {
        assert_eq!(b.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["/admin/jobs/jobs/999999/stop", "/admin/jobs/things/1/stop"] {
        let r = b.post(path, &[("_csrf", token.as_str())]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = b.post("/admin/jobs/queues/count/stop", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no form token");
}

#[tokio::test]
async fn administrators_change_the_configuration_and_pinned_settings_stay() {
    let mut pinned = std::collections::BTreeMap::new();
    pinned.insert(
        "ldap_timeout".to_owned(),
        "the configuration file /etc/berth.toml".to_owned(),
    );
    let base = berth_registry::SettingsBase {
        initial: berth_registry::Settings::default(),
        pinned,
    };
    let mut b = Browser::start_with(base).await;
    user(&b.app, "dev").await;
    let mut dev = b.another();
    dev.sign_in("dev", "User-pass-123").await;
    assert_eq!(
        dev.get("/admin/configuration").await.status,
        StatusCode::FORBIDDEN
    );
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/admin/configuration").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html
            .contains("Pinned by the configuration file &#x2f;etc&#x2f;berth.toml.")
    );
    assert!(
        page.html
            .contains("id=\"cfg-ldap_timeout\" name=\"ldap_timeout\" value=\"5\" inputmode=\"numeric\" maxlength=\"1024\" disabled"),
        "{}",
        page.html
    );
    let token = page.token();
    // What a browser sends: every enabled field, checked boxes only.
    let form = |token_minutes: &str, mode: &str, op: &str| {
        vec![
            ("_csrf", token.clone()),
            ("op", op.to_owned()),
            ("auth_mode", mode.to_owned()),
            ("ldap_url", String::new()),
            ("ldap_search_dn", String::new()),
            ("ldap_search_password", String::new()),
            ("ldap_base_dn", String::new()),
            ("ldap_filter", "(objectClass=person)".to_owned()),
            ("ldap_uid", "uid".to_owned()),
            ("project_creation_restriction", "adminonly".to_owned()),
            ("token_expiration", token_minutes.to_owned()),
        ]
    };
    let r = b
        .post_owned("/admin/configuration", &form("0", "db_auth", "save"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.html
            .contains("Token lifetime in minutes (1 to 1440): this value is not allowed."),
        "{}",
        r.html
    );
    assert!(
        r.html.contains("value=\"0\""),
        "the value sent is shown again"
    );
    let r = b
        .post_owned("/admin/configuration", &form("10", "ldap_auth", "save"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("The LDAP mode needs"), "{}", r.html);
    let r = b
        .post_owned("/admin/configuration", &form("10", "ldap_auth", "ping"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("The directory test failed:"), "{}", r.html);
    let settings = b.app.registry.settings();
    assert_eq!(settings.auth_mode(), "db_auth", "nothing saved yet");

    let r = b
        .post_owned("/admin/configuration", &form("10", "db_auth", "save"))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let settings = b.app.registry.settings();
    assert_eq!(settings.token_lifetime().as_secs(), 600);
    assert_eq!(
        settings.project_creation(),
        berth_auth::ProjectCreation::AdminOnly
    );
    assert!(
        !settings.ldap_settings().verify_certificate,
        "an unchecked box is false"
    );
    assert_eq!(settings.ldap_settings().timeout.as_secs(), 5, "pinned");
    let page = b.get("/admin/configuration?saved=1").await;
    assert!(page.html.contains("Saved."));
    assert!(page.html.contains("value=\"10\""));
    // Project creation is now for administrators only.
    let projects = dev.get("/projects").await;
    assert!(
        !projects.html.contains("name=\"project_name\""),
        "no new-project form for dev"
    );
    // Without the form's token: refused, nothing changed.
    let mut forged = form("20", "db_auth", "save");
    forged.remove(0);
    let r = b.post_owned("/admin/configuration", &forged).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(b.app.registry.settings().token_lifetime().as_secs(), 600);
    // The change is in the audit log.
    let log = b.get("/admin/audit?resource=token_expiration").await;
    assert!(
        log.html.contains("<td class=\"nowrap\">Update</td>"),
        "{}",
        log.html
    );
}
