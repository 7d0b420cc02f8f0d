//! The web UI in process: a real app (SQLite, filesystem blobs, token service) with the UI's
//! routes merged as `berth serve` merges them, driven with `oneshot` by a client that keeps
//! cookies like a browser (`support`).

#![allow(clippy::unwrap_used)]

mod support;

use axum::http::{Method, StatusCode, header};
use berth_testkit::app::{ADMIN, ADMIN_PASSWORD};
use support::{Browser, member, project, user};

#[tokio::test]
async fn signing_in_needs_the_form_token_and_the_right_password() {
    let mut b = Browser::start().await;
    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.headers["x-frame-options"], "DENY");
    let form_cookie = login.set_cookie("berth_form").expect("a form token cookie");
    assert!(
        form_cookie.contains("HttpOnly") && form_cookie.contains("SameSite=Lax"),
        "{form_cookie}"
    );
    assert!(
        login
            .html
            .contains("<label for=\"username\">Username</label>")
    );

    // No token (a form posted from another site): refused, nobody signed in.
    let forged = b
        .post(
            "/login",
            &[("username", ADMIN), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        forged.html.contains("Your sign-in form expired"),
        "{}",
        forged.html
    );
    assert!(!b.cookies.contains_key("sid"));

    let wrong = b.sign_in(ADMIN, "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("Invalid username or password."));
    assert!(wrong.html.contains("value=\"admin\""), "the name is kept");
    assert!(!b.cookies.contains_key("sid"));

    let ok = b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/projects");
    let sid = ok.set_cookie("sid").unwrap();
    assert!(
        sid.contains("HttpOnly") && sid.contains("SameSite=Lax") && !sid.contains("Secure"),
        "{sid}"
    );
    let projects = b.get("/projects").await;
    assert_eq!(projects.status, StatusCode::OK);
    assert!(projects.html.contains("Signed in as admin"));

    // Both attempts are in the audit log, with the client's address.
    let log = b
        .app
        .registry
        .meta()
        .audit_log(
            &berth_meta::AuditQuery::default(),
            berth_meta::Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let logins: Vec<_> = log
        .items
        .iter()
        .map(|r| &r.entry)
        .filter(|e| e.operation == "login")
        .map(|e| {
            (
                e.username.as_str(),
                e.outcome.as_str(),
                e.client_address.as_str(),
            )
        })
        .collect();
    assert_eq!(
        logins,
        [
            ("admin", "success", "192.0.2.20"),
            ("admin", "failure", "192.0.2.20")
        ]
    );
}

#[tokio::test]
async fn signing_out_needs_the_session_token_and_ends_the_session() {
    let mut b = Browser::start().await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let sid = b.cookies["sid"].clone();
    let forged = b.post("/logout", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.html.contains("without a valid security token"));
    assert!(b.get("/projects").await.html.contains("Signed in as admin"));

    let token = b.get("/projects").await.token();
    let out = b.post("/logout", &[("_csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.headers[header::LOCATION], "/login");
    assert!(!b.cookies.contains_key("sid"));
    // The old cookie (a stale session) is nobody.
    b.cookies.insert("sid".into(), sid);
    let page = b.get("/projects").await;
    assert!(!page.html.contains("Signed in as"), "{}", page.html);
}

#[tokio::test]
async fn private_projects_are_not_found_for_outsiders() {
    let mut b = Browser::start().await;
    project(&b.app, "secret", false).await;
    project(&b.app, "open", true).await;
    user(&b.app, "outsider").await;

    // Anonymous: asked to sign in, for a private project and a missing one alike.
    let list = b.get("/projects").await;
    assert!(list.html.contains(">open</a>"));
    assert!(
        !list.html.contains("secret"),
        "anonymous sees the private project listed"
    );
    for path in ["/projects/secret", "/projects/nothing-here"] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let to = page.headers[header::LOCATION].to_str().unwrap();
        assert_eq!(to, format!("/login?next={}", path.replace('/', "%2F")));
    }
    // A signed-in outsider: a private project is exactly a missing one.
    {
        b.sign_in("outsider", "User-pass-123").await;
        let list = b.get("/projects").await;
        assert!(list.html.contains(">open</a>"));
        assert!(
            !list.html.contains("secret"),
            "the outsider sees the private project listed"
        );
        let hidden = b.get("/projects/secret").await;
        let missing = b.get("/projects/nothing-here").await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(
            hidden
                .html
                .contains("This page does not exist, or you may not see it.")
        );
        let strip = |html: &str, name: &str| {
            html.replace(name, "X")
                .lines()
                .filter(|l| !l.contains("_csrf"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            strip(&hidden.html, "secret"),
            strip(&missing.html, "nothing-here"),
            "a private project looks exactly like a missing one"
        );
        assert_eq!(b.get("/projects/open").await.status, StatusCode::OK);
    }
    b.cookies.clear();
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/projects/secret").await;
    assert_eq!(page.status, StatusCode::OK);
    // minijinja writes `/` as `&#x2f;` in escaped text; the browser shows a slash.
    let text = page.html.replace("&#x2f;", "/");
    assert!(
        text.contains("docker push registry.test/secret/IMAGE:TAG"),
        "{text}"
    );
}

#[tokio::test]
async fn names_and_queries_are_escaped() {
    let mut b = Browser::start().await;
    let evil = "<script>alert(1)</script>";
    user(&b.app, evil).await;
    let page = b.sign_in(evil, "User-pass-123").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let html = b.get("/projects").await.html;
    assert!(!html.contains(evil), "{html}");
    assert!(
        html.contains("Signed in as &lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    // A search term is shown back escaped as well.
    let html = b.get("/projects?q=%22%3E%3Cimg%20src%3Dx%3E").await.html;
    assert!(!html.contains("<img src=x>"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;img src=x&gt;"), "{html}");
}

#[tokio::test]
async fn the_language_follows_the_browser_and_the_switch() {
    let mut b = Browser::start().await;
    project(&b.app, "open", true).await;
    b.accept_language = Some("zh-CN,zh;q=0.9,en;q=0.5");
    let page = b.get("/projects").await;
    assert!(
        page.html
            .starts_with("<!doctype html>\n<html lang=\"zh-CN\">")
    );
    assert!(
        page.html.contains("共 2 个项目"),
        "open and library: {}",
        page.html
    );
    assert!(page.html.contains("<th scope=\"col\">名称</th>"));

    let token = page.token();
    let form = [
        ("_csrf", token.as_str()),
        ("lang", "en"),
        ("next", "/projects?q=op"),
    ];
    let switched = b.post("/language", &form).await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.headers[header::LOCATION], "/projects?q=op");
    assert_eq!(b.cookies["lang"], "en");
    assert!(
        b.get("/projects").await.html.contains("2 projects"),
        "the cookie wins over Accept-Language"
    );

    // Only paths on this site are returned to; the form needs its token.
    let token = b.get("/projects").await.token();
    for next in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let form = [("_csrf", token.as_str()), ("lang", "zh-CN"), ("next", next)];
        let r = b.post("/language", &form).await;
        assert_eq!(r.headers[header::LOCATION], "/projects", "{next}");
    }
    let forged = b.post("/language", &[("lang", "en"), ("next", "/")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn static_files_and_unknown_ones() {
    let mut b = Browser::start().await;
    let css = b.get("/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    let js = b.get("/static/vendor/htmx.min.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.html.contains("htmx"));
    assert_eq!(
        b.get("/static/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/static/nothing.js").await.status,
        StatusCode::NOT_FOUND
    );
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.headers[header::LOCATION], "/projects");
}

#[tokio::test]
async fn a_user_creates_a_project_and_reads_its_artifacts() {
    let mut b = Browser::start().await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/projects").await;
    assert!(page.html.contains("New project"));
    let token = page.token();

    // A name that breaks the rule, and one taken: shown next to the field, nothing created.
    let form = [("_csrf", token.as_str()), ("project_name", "Team")];
    let bad = b.post("/projects", &form).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.html.contains("id=\"project_name-error\""),
        "{}",
        bad.html
    );
    assert!(
        bad.html
            .contains("project name &quot;Team&quot; is invalid"),
        "{}",
        bad.html
    );
    assert!(bad.html.contains("value=\"Team\""), "the name is kept");
    let taken = b
        .post(
            "/projects",
            &[("_csrf", token.as_str()), ("project_name", "library")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(
        taken
            .html
            .contains("A project with this name exists already.")
    );
    let forged = b.post("/projects", &[("project_name", "team")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    let form = [
        ("_csrf", token.as_str()),
        ("project_name", "team"),
        ("public", "true"),
    ];
    let made = b.post("/projects", &form).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    assert_eq!(made.headers[header::LOCATION], "/projects/team");
    let project = b.get("/projects/team").await;
    assert!(
        project
            .html
            .contains("This project has no repositories yet.")
    );
    let created = b
        .app
        .registry
        .meta()
        .project("team")
        .await
        .unwrap()
        .unwrap();
    assert!(created.public);

    let digest = b.push("team/tools/app", "v1").await;
    let project = b.get("/projects/team").await;
    assert!(
        project
            .html
            .replace("&#x2f;", "/")
            .contains("href=\"/projects/team/repositories/tools/app\""),
        "{}",
        project.html
    );
    let repo = b.get("/projects/team/repositories/tools/app").await;
    assert_eq!(repo.status, StatusCode::OK, "{}", repo.html);
    let text = repo.html.replace("&#x2f;", "/");
    assert!(text.contains("<span class=\"tag\">v1"), "{text}");
    assert!(
        text.contains("docker pull registry.test/team/tools/app:v1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "docker pull registry.test/team/tools/app@{digest}"
        )),
        "{text}"
    );
    assert!(
        text.contains(">Image<") || text.contains("Image</td>"),
        "{text}"
    );
    assert_eq!(
        b.get("/projects/team/repositories/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/projects/team/repositories/BAD%20NAME").await.status,
        StatusCode::NOT_FOUND
    );

    // The same page in Chinese.
    b.accept_language = Some("zh-CN");
    let zh = b.get("/projects/team/repositories/tools/app").await;
    assert!(zh.html.contains("拉取命令"), "{}", zh.html);
}

#[tokio::test]
async fn project_admins_manage_members_and_guests_only_read_them() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    user(&b.app, "dev").await;
    user(&b.app, "guest").await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/projects/team/members").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("This project has no members."));
    let token = page.token();
    for (member, role) in [("dev", "2"), ("guest", "3"), ("cn=devs,dc=example", "3")] {
        let form = [
            ("_csrf", token.as_str()),
            ("member", member),
            ("role", role),
        ];
        let r = b.post("/projects/team/members", &form).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{member}: {}", r.html);
    }
    for (member, status, says) in [
        (
            "nobody",
            StatusCode::BAD_REQUEST,
            "There is no user named “nobody”.",
        ),
        ("dev", StatusCode::CONFLICT, "dev is a member already"),
    ] {
        let form = [("_csrf", token.as_str()), ("member", member), ("role", "2")];
        let r = b.post("/projects/team/members", &form).await;
        assert_eq!(r.status, status, "{member}");
        assert!(r.html.contains(says), "{member}: {}", r.html);
        assert!(
            r.html.contains("id=\"member-error\""),
            "the reason is next to the field"
        );
    }
    let list = b.get("/projects/team/members").await;
    assert!(list.html.contains("<td>Developer</td>") || list.html.contains(">Developer<"));
    let members = b
        .app
        .registry
        .meta()
        .list_members(
            b.app
                .registry
                .meta()
                .project("team")
                .await
                .unwrap()
                .unwrap()
                .id,
            None,
            berth_meta::Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let by_name = |n: &str| {
        members
            .items
            .iter()
            .find(|m| m.entity_name == n)
            .unwrap()
            .id
    };
    let (dev, guest) = (by_name("dev"), by_name("guest"));
    assert_eq!(members.items.len(), 3);

    // Make the developer a maintainer.
    let token = b.get("/projects/team/members").await.token();
    let r = b
        .post(
            &format!("/projects/team/members/{dev}/role"),
            &[("_csrf", token.as_str()), ("role", "4")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // The guest reads the list but sees no control, and a forged POST is refused.
    b.cookies.clear();
    b.sign_in("guest", "User-pass-123").await;
    let page = b.get("/projects/team/members").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Maintainer"), "{}", page.html);
    assert!(
        !page.html.contains("Remove"),
        "a guest sees a remove control"
    );
    assert!(
        !page.html.contains("Add a member") && !page.html.contains("members/"),
        "{}",
        page.html
    );
    let token = page.token();
    let forged = b
        .post(
            &format!("/projects/team/members/{dev}/remove"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.html.contains("You may not do this."));

    // The admin removes the guest.
    b.cookies.clear();
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let token = b.get("/projects/team/members").await.token();
    let no_token = b
        .post(&format!("/projects/team/members/{guest}/remove"), &[])
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let r = b
        .post(
            &format!("/projects/team/members/{guest}/remove"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        !b.get("/projects/team/members")
            .await
            .html
            .contains(">guest<")
    );
    let gone = b
        .post(
            &format!("/projects/team/members/{guest}/remove"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_robot_secret_is_shown_once_and_works_until_disabled() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    user(&b.app, "guest").await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/projects/team/robots").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("This project has no robot accounts."));
    let token = page.token();

    let bad = [("_csrf", token.as_str()), ("name", "CI"), ("pull", "on")];
    let r = b.post("/projects/team/robots", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.html
            .contains("A robot name has 1 to 128 lower-case letters and digits"),
        "{}",
        r.html
    );
    let bad = [
        ("_csrf", token.as_str()),
        ("name", "ci"),
        ("duration", "soon"),
        ("pull", "on"),
    ];
    let r = b.post("/projects/team/robots", &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("The lifetime is a number of days"));

    let form = [("_csrf", token.as_str()), ("name", "ci"), ("push", "on")];
    let made = b.post("/projects/team/robots", &form).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.html);
    assert_eq!(made.headers[header::CACHE_CONTROL], "no-store");
    assert!(made.html.contains("it is shown only once"));
    let marker = "<code id=\"robot-secret\">";
    let at = made.html.find(marker).expect("the secret") + marker.len();
    let secret = made.html[at..at + made.html[at..].find('<').unwrap()].to_owned();
    assert_eq!(secret.len(), 32);
    let name = "robot$team+ci";
    assert_eq!(
        b.v2_status(name, &secret, "/v2/team/app/tags/list").await,
        StatusCode::NOT_FOUND,
        "pull granted: the repository is just missing"
    );
    // Push implies pull (a client checks what exists before pushing).
    let again = b.get("/projects/team/robots").await;
    assert!(!again.html.contains(&secret), "the secret is shown once");
    assert!(again.html.contains(">Pull</span>") && again.html.contains(">Push</span>"));
    let id = b
        .app
        .registry
        .meta()
        .list_robots(
            berth_meta::RobotsOf::All,
            berth_meta::Page {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap()
        .items[0]
        .id;

    // The guest sees the robot but no control, and cannot act with a forged form.
    b.cookies.clear();
    member(&b.app, "team", "guest", berth_auth::Role::Guest).await;
    b.sign_in("guest", "User-pass-123").await;
    let seen = b.get("/projects/team/robots").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(seen.html.contains("robot$team+ci"));
    assert!(!seen.html.contains("New robot account") && !seen.html.contains("/delete"));
    let token = seen.token();
    let forged = b
        .post(
            &format!("/projects/team/robots/{id}/delete"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The admin disables it: the secret stops working; enables it again; deletes it.
    b.cookies.clear();
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let token = b.get("/projects/team/robots").await.token();
    let r = b
        .post(
            &format!("/projects/team/robots/{id}/disable"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        b.v2_status(name, &secret, "/v2/").await,
        StatusCode::UNAUTHORIZED
    );
    let r = b
        .post(
            &format!("/projects/team/robots/{id}/enable"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(b.v2_status(name, &secret, "/v2/").await, StatusCode::OK);
    let fresh = b
        .post(
            &format!("/projects/team/robots/{id}/refresh"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert!(fresh.html.contains("Secret of robot$team+ci"));
    assert_eq!(
        b.v2_status(name, &secret, "/v2/").await,
        StatusCode::UNAUTHORIZED,
        "the old secret died"
    );
    let r = b
        .post(
            &format!("/projects/team/robots/{id}/delete"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        b.get("/projects/team/robots")
            .await
            .html
            .contains("no robot accounts")
    );
    let r = b
        .post(
            &format!("/projects/team/robots/{id}/delete"),
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = b
        .post(
            "/projects/team/robots/1/explode",
            &[("_csrf", token.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn artifacts_are_tagged_and_deleted_by_those_allowed_and_audited() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    user(&b.app, "dev").await;
    user(&b.app, "guest").await;
    member(&b.app, "team", "dev", berth_auth::Role::Developer).await;
    member(&b.app, "team", "guest", berth_auth::Role::Guest).await;
    let d1 = b.push("team/app", "v1").await;
    let d2 = b.push("team/app", "v2").await;
    let d3 = b.push("team/app", "v3").await;
    assert!(d1 != d2 && d2 != d3);
    let page = "/projects/team/repositories/app";

    // The guest sees the artifacts but no control; forged changes are refused.
    b.sign_in("guest", "User-pass-123").await;
    let seen = b.get(page).await;
    assert!(seen.html.contains(">v1"));
    assert!(
        !seen.html.contains("name=\"op\""),
        "a guest sees a control: {}",
        seen.html
    );
    let token = seen.token();
    for op in [
        format!("delete:{d1}"),
        format!("tag:{d1}"),
        "untag:v1".to_owned(),
    ] {
        let r = b
            .post(
                page,
                &[
                    ("_csrf", token.as_str()),
                    ("op", op.as_str()),
                    (&format!("new-tag-{d1}"), "x"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{op}");
    }

    // The developer may tag but not delete.
    b.cookies.clear();
    b.sign_in("dev", "User-pass-123").await;
    let seen = b.get(page).await;
    assert!(seen.html.contains("Add tag") && !seen.html.contains("Delete selected"));
    let token = seen.token();
    let field = format!("new-tag-{d1}");
    let op = format!("tag:{d1}");
    let r = b
        .post(
            page,
            &[
                ("_csrf", token.as_str()),
                ("op", op.as_str()),
                (field.as_str(), "stable"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html);
    let r = b
        .post(
            page,
            &[
                ("_csrf", token.as_str()),
                ("op", op.as_str()),
                (field.as_str(), "bad tag!"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.html.contains("That is not a valid tag"), "{}", r.html);
    let op2 = format!("tag:{d2}");
    let field2 = format!("new-tag-{d2}");
    let r = b
        .post(
            page,
            &[
                ("_csrf", token.as_str()),
                ("op", op2.as_str()),
                (field2.as_str(), "stable"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.html.contains("That tag exists already"));
    let del = format!("delete:{d1}");
    let r = b
        .post(page, &[("_csrf", token.as_str()), ("op", del.as_str())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(b.get(page).await.html.contains(">stable"));

    // The administrator removes a tag, then deletes two artifacts at once.
    b.cookies.clear();
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let token = b.get(page).await.token();
    let r = b
        .post(page, &[("_csrf", token.as_str()), ("op", "untag:stable")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = b
        .post(page, &[("_csrf", token.as_str()), ("op", "delete")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "nothing selected");
    let r = b
        .post(
            page,
            &[
                ("_csrf", token.as_str()),
                ("op", "delete"),
                ("digest", d2.as_str()),
                ("digest", d3.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let left = b.get(page).await.html;
    assert!(
        left.contains(">v1")
            && !left.contains(">v2")
            && !left.contains(">v3")
            && !left.contains(">stable")
    );
    let no_token = b
        .post(page, &[("op", "delete"), ("digest", d1.as_str())])
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    // Each change is in the audit log, by who made it.
    let log = b
        .app
        .registry
        .meta()
        .audit_log(
            &berth_meta::AuditQuery::default(),
            berth_meta::Page {
                offset: 0,
                limit: 50,
            },
        )
        .await
        .unwrap();
    let changes: Vec<(String, String, String)> = log
        .items
        .iter()
        .map(|r| &r.entry)
        .filter(|e| matches!(e.operation.as_str(), "create" | "delete"))
        .filter(|e| matches!(e.resource_type.as_str(), "tag" | "artifact"))
        .map(|e| {
            (
                e.username.clone(),
                e.operation.clone(),
                e.resource_type.clone(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("dev".into(), "create".into(), "tag".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("admin".into(), "delete".into(), "tag".into())),
        "{changes:?}"
    );
    assert_eq!(
        changes
            .iter()
            .filter(|c| c.0 == "admin" && c.1 == "delete" && c.2 == "artifact")
            .count(),
        2,
        "{changes:?}"
    );
}

#[tokio::test]
async fn enter_in_a_field_never_deletes() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    let d1 = b.push("team/app", "v1").await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/projects/team/repositories/app").await;
    // Without the script, Enter submits the form's first button, which must change nothing.
    let first = page.html.find("name=\"op\"").unwrap();
    assert!(
        page.html[first..].starts_with("name=\"op\" value=\"stay\""),
        "{}",
        &page.html[first..first + 40]
    );
    let token = page.token();
    let r = b
        .post(
            "/projects/team/repositories/app",
            &[
                ("_csrf", token.as_str()),
                ("op", "stay"),
                ("digest", d1.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        b.get("/projects/team/repositories/app")
            .await
            .html
            .contains(">v1")
    );
    let r = b
        .post(
            "/projects/team/repositories/app",
            &[("_csrf", token.as_str()), ("op", "explode")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logs_are_read_by_developers_and_administrators_with_filters() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    user(&b.app, "dev").await;
    user(&b.app, "guest").await;
    member(&b.app, "team", "dev", berth_auth::Role::Developer).await;
    member(&b.app, "team", "guest", berth_auth::Role::Guest).await;
    let digest = b.push("team/app", "v1").await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let token = b.get("/projects/team/repositories/app").await.token();
    let op = format!("delete:{digest}");
    let r = b
        .post(
            "/projects/team/repositories/app",
            &[("_csrf", token.as_str()), ("op", op.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    let all = b.get("/projects/team/logs").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.html.contains("Logs of team"));
    let text = all.html.replace("&#x2f;", "/");
    assert!(
        text.contains("team/app@") || text.contains("team/app:v1"),
        "{text}"
    );
    let deletes = b.get("/projects/team/logs?operation=delete").await;
    assert!(deletes.html.contains("One entry"), "{}", deletes.html);
    assert!(deletes.html.contains(">Delete</td>"));
    assert!(!deletes.html.contains(">Create</td>"));
    let today = &berth_web::i18n::iso(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    )[..10];
    let ranged = b
        .get(&format!(
            "/projects/team/logs?operation=delete&from={today}&to={today}"
        ))
        .await;
    assert!(ranged.html.contains("One entry"));
    let none = b.get("/projects/team/logs?to=2001-01-01").await;
    assert!(none.html.contains("No entries."), "{}", none.html);
    let bad = b.get("/projects/team/logs?from=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("Dates are written YYYY-MM-DD."));
    let bad = b.get("/projects/team/logs?operation=drop").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let audit = b.get("/admin/audit?operation=login").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.html.contains(">Sign in</td>") && audit.html.contains("One entry"));
    assert!(
        audit.html.contains("href=\"/admin/audit\""),
        "administrators see the link"
    );

    // A developer reads the project's log, not the registry's; a guest neither.
    b.cookies.clear();
    b.sign_in("dev", "User-pass-123").await;
    assert_eq!(b.get("/projects/team/logs").await.status, StatusCode::OK);
    let page = b.get("/projects/team").await;
    assert!(page.html.contains("/projects/team/logs") && !page.html.contains("/admin/audit"));
    assert_eq!(b.get("/admin/audit").await.status, StatusCode::FORBIDDEN);
    b.cookies.clear();
    b.sign_in("guest", "User-pass-123").await;
    assert!(
        !b.get("/projects/team")
            .await
            .html
            .contains("/projects/team/logs")
    );
    assert_eq!(
        b.get("/projects/team/logs").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn project_admins_change_visibility_and_delete_only_empty_projects() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    project(&b.app, "empty", false).await;
    user(&b.app, "dev").await;
    member(&b.app, "team", "dev", berth_auth::Role::Developer).await;
    b.push("team/app", "v1").await;

    // A developer sees no settings tab and may not change anything.
    b.sign_in("dev", "User-pass-123").await;
    assert!(
        !b.get("/projects/team")
            .await
            .html
            .contains("/projects/team/settings")
    );
    assert_eq!(
        b.get("/projects/team/settings").await.status,
        StatusCode::FORBIDDEN
    );
    let token = b.get("/projects/team").await.token();
    let forged = b
        .post(
            "/projects/team/settings",
            &[
                ("_csrf", token.as_str()),
                ("op", "visibility"),
                ("public", "true"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let meta = b.app.registry.meta().clone();
    assert!(!meta.project("team").await.unwrap().unwrap().public);

    b.cookies.clear();
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let page = b.get("/projects/team/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.token();
    let no_token = b
        .post(
            "/projects/team/settings",
            &[("op", "visibility"), ("public", "true")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let made_public = b
        .post(
            "/projects/team/settings",
            &[
                ("_csrf", token.as_str()),
                ("op", "visibility"),
                ("public", "true"),
            ],
        )
        .await;
    assert_eq!(made_public.status, StatusCode::SEE_OTHER);
    assert_eq!(
        made_public.headers[header::LOCATION],
        "/projects/team/settings?saved=1"
    );
    assert!(
        b.get("/projects/team/settings?saved=1")
            .await
            .html
            .contains("Saved.")
    );
    assert!(meta.project("team").await.unwrap().unwrap().public);

    // Not while it has a repository: the reason is shown, and the project stays.
    let refused = b
        .post(
            "/projects/team/settings",
            &[("_csrf", token.as_str()), ("op", "delete")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::PRECONDITION_FAILED);
    assert!(
        refused
            .html
            .contains("The project still has one repository; delete them first."),
        "{}",
        refused.html
    );
    assert!(meta.project("team").await.unwrap().is_some());
    b.accept_language = Some("zh-CN");
    let refused = b
        .post(
            "/projects/team/settings",
            &[("_csrf", token.as_str()), ("op", "delete")],
        )
        .await;
    assert!(
        refused.html.contains("该项目还有 1 个镜像仓库"),
        "{}",
        refused.html
    );

    let deleted = b
        .post(
            "/projects/empty/settings",
            &[("_csrf", token.as_str()), ("op", "delete")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.headers[header::LOCATION], "/projects");
    assert!(meta.project("empty").await.unwrap().is_none());
    let unknown = b
        .post(
            "/projects/team/settings",
            &[("_csrf", token.as_str()), ("op", "rename")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn users_change_their_profile_and_password() {
    let mut b = Browser::start().await;
    user(&b.app, "dev").await;
    assert_eq!(b.get("/account").await.status, StatusCode::SEE_OTHER);
    b.sign_in("dev", "User-pass-123").await;
    let page = b.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("href=\"/account\""));
    let token = page.token();
    let r = b
        .post(
            "/account",
            &[
                ("_csrf", token.as_str()),
                ("op", "profile"),
                ("email", "dev@example.org"),
                ("realname", "<b>Dev</b>"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = b.get("/account?saved=1").await;
    assert!(page.html.contains("Saved.") && page.html.contains("value=\"dev@example.org\""));
    assert!(page.html.contains("&lt;b&gt;Dev&lt;&#x2f;b&gt;"));
    let forged = b
        .post("/account", &[("op", "profile"), ("email", "x@y")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    for (old, new, status, says) in [
        (
            "wrong-Pass-1",
            "Better-pass-456",
            StatusCode::FORBIDDEN,
            "The current password is wrong.",
        ),
        (
            "User-pass-123",
            "weak",
            StatusCode::BAD_REQUEST,
            "The new password is too weak",
        ),
        (
            "User-pass-123",
            "User-pass-123",
            StatusCode::BAD_REQUEST,
            "must differ",
        ),
    ] {
        let form = [
            ("_csrf", token.as_str()),
            ("op", "password"),
            ("old_password", old),
            ("new_password", new),
        ];
        let r = b.post("/account", &form).await;
        assert_eq!(r.status, status, "{new}");
        assert!(r.html.contains(says), "{new}: {}", r.html);
    }
    let form = [
        ("_csrf", token.as_str()),
        ("op", "password"),
        ("old_password", "User-pass-123"),
        ("new_password", "Better-pass-456"),
    ];
    assert_eq!(
        b.post("/account", &form).await.status,
        StatusCode::SEE_OTHER
    );
    b.cookies.clear();
    assert_eq!(
        b.sign_in("dev", "User-pass-123").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.sign_in("dev", "Better-pass-456").await.status,
        StatusCode::SEE_OTHER
    );
}

// ---------------------------------------------------------------------------------------------
// The artifact page.

fn sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Uploads `blob` into `repository` (monolithic); returns its digest.
async fn put_blob(b: &Browser, repository: &str, blob: &[u8]) -> String {
    let digest = sha256(blob);
    let path = format!("/v2/{repository}/blobs/uploads/?digest={digest}");
    let status = b
        .admin_v2(
            Method::POST,
            &path,
            "application/octet-stream",
            blob.to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{path}");
    digest
}

/// Pushes `manifest` as `repository:reference` (a tag, or its digest when `None`); returns its
/// digest and size.
async fn put_manifest(
    b: &Browser,
    repository: &str,
    reference: Option<&str>,
    manifest: &serde_json::Value,
) -> (String, usize) {
    let body = serde_json::to_vec(manifest).unwrap();
    let digest = sha256(&body);
    let media_type = manifest["mediaType"].as_str().unwrap();
    let path = format!(
        "/v2/{repository}/manifests/{}",
        reference.unwrap_or(&digest)
    );
    let size = body.len();
    let status = b.admin_v2(Method::PUT, &path, media_type, body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}");
    (digest, size)
}

/// Pushes an image with `config` and one layer per entry of `layers`; returns its digest and
/// size, and the config's digest.
async fn push_image(
    b: &Browser,
    repository: &str,
    tag: Option<&str>,
    config: &serde_json::Value,
    layers: &[&[u8]],
    annotations: serde_json::Value,
) -> (String, usize, String) {
    let config = serde_json::to_vec(config).unwrap();
    let config_digest = put_blob(b, repository, &config).await;
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = put_blob(b, repository, layer).await;
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest, "size": layer.len(),
        }));
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
        "annotations": annotations,
    });
    let (digest, size) = put_manifest(b, repository, tag, &manifest).await;
    (digest, size, config_digest)
}

/// A page's HTML with `/` written as such (minijinja writes `&#x2f;` in escaped text).
fn slashed(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

const EVIL: &str = "<script>alert(1)</script>";
const EVIL_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

#[tokio::test]
async fn an_image_page_shows_its_config_layers_history_and_annotations() {
    let mut b = Browser::start().await;
    project(&b.app, "team", false).await;
    let config = serde_json::json!({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "created": "2024-05-01T10:00:00Z", "author": "Jane <jane@example.com>",
        "config": {
            "Env": ["PATH=/usr/bin", "GREETING=hello world"],
            "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.source": "https://example.com/src"},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2024-04-30T08:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in /"},
            {"created": "2024-05-01T10:00:00Z", "created_by": EVIL, "empty_layer": true},
        ],
    });
    let first = b"first layer".repeat(150);
    let second = b"second".repeat(10);
    let annotations = serde_json::json!({
        "org.opencontainers.image.title": EVIL, "com.example.plain": "just text",
    });
    let (digest, _, config_digest) = push_image(
        &b,
        "team/tools/app",
        Some("v1"),
        &config,
        &[&first, &second],
        annotations,
    )
    .await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let path = format!("/projects/team/repositories/tools/app/artifacts/{digest}");
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let html = slashed(&page.html);

    // The summary, the tag and the pull commands.
    assert!(html.contains(&format!("<code id=\"artifact-digest\">{digest}</code>")));
    assert!(html.contains("application/vnd.oci.image.manifest.v1+json"));
    assert!(html.contains("<span class=\"tag\">v1</span>"), "{html}");
    assert!(html.contains("docker pull registry.test/team/tools/app:v1"));
    assert!(html.contains(&format!(
        "docker pull registry.test/team/tools/app@{digest}"
    )));
    assert!(html.contains("data-copy=\"pull-digest\""));
    assert!(html.contains("<a href=\"/projects/team/repositories/tools/app\">tools/app</a>"));
    // The config.
    assert!(html.contains(&config_digest));
    for shown in [
        "<td>linux</td>",
        "<td>arm64</td>",
        "<td>v8</td>",
        "<time datetime=\"2024-05-01T10:00:00Z\">May 1, 2024 10:00 UTC</time>",
        "<td>Jane &lt;jane@example.com&gt;</td>",
        "<code>PATH=/usr/bin</code>",
        "<code>GREETING=hello world</code>",
        "<code>[&quot;/bin/app&quot;]</code>",
        "<code>[&quot;--serve&quot;]</code>",
        "<code>/srv</code>",
        "<code>8080/tcp</code>",
        "<td><code>org.opencontainers.image.source</code></td><td>https://example.com/src</td>",
    ] {
        assert!(html.contains(shown), "{shown} missing: {html}");
    }
    // The layers, in order, with their sizes.
    let (l1, l2) = (sha256(&first), sha256(&second));
    let at1 = html.find(&format!("title=\"{l1}\">{}</code>", &l1[7..19]));
    let at2 = html.find(&format!("title=\"{l2}\">{}</code>", &l2[7..19]));
    assert!(at1.is_some() && at2.is_some() && at1 < at2, "{html}");
    assert!(html.contains("1.65 KB") && html.contains("60 B"), "{html}");
    assert!(html.contains("2 layers"));
    // The build history, a pusher's script escaped.
    assert!(html.contains("<code>/bin/sh -c #(nop) ADD file:abc in /</code>"));
    assert!(
        html.contains(&format!("<code>{EVIL_ESCAPED}</code>")),
        "{html}"
    );
    assert!(html.contains("<td>Yes</td>") && html.contains("<td>No</td>"));
    // The annotations, escaped too, and never as markup anywhere.
    assert!(html.contains("<td><code>com.example.plain</code></td><td>just text</td>"));
    assert!(html.contains(&format!(
        "<td><code>org.opencontainers.image.title</code></td><td>{EVIL_ESCAPED}</td>"
    )));
    assert!(!page.html.contains("<script>alert"), "{html}");
    // The manifest, indented and escaped.
    assert!(
        html.contains("\n  &quot;schemaVersion&quot;: 2\n}</code></pre>"),
        "{html}"
    );
    assert!(html.contains("No artifact refers to this one."));

    // The repository page links the digest to this page.
    let repo = slashed(&b.get("/projects/team/repositories/tools/app").await.html);
    assert!(repo.contains(&format!("<a href=\"{path}\">")), "{repo}");
    assert!(!repo.contains("referrer"), "{repo}");

    // In Chinese.
    b.accept_language = Some("zh-CN");
    let zh = b.get(&path).await;
    assert_eq!(zh.status, StatusCode::OK);
    for shown in ["构建历史", "注解", "2024年5月1日 10:00 UTC", "共 2 层"] {
        assert!(zh.html.contains(shown), "{shown}: {}", zh.html);
    }
    b.accept_language = None;

    // A config gone from storage, or too large to read, is said so: the page still answers.
    b.app
        .registry
        .blobs()
        .delete_blobs(&[config_digest.parse().unwrap()])
        .await
        .unwrap();
    let gone = b.get(&path).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.html);
    assert!(gone.html.contains("The config blob is not in storage."));
    assert!(!gone.html.contains("arm64") && gone.html.contains("2 layers"));
    let huge = serde_json::json!({"os": "linux", "padding": "x".repeat(1 << 20)});
    let (big, _, _) = push_image(
        &b,
        "team/tools/big",
        None,
        &huge,
        &[b"l"],
        serde_json::json!({}),
    )
    .await;
    let page = b
        .get(&format!(
            "/projects/team/repositories/tools/big/artifacts/{big}"
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html
            .contains("The config is larger than 1.05 MB and is not shown."),
        "{}",
        page.html
    );
    assert!(page.html.contains("The manifest has no annotations."));
}

#[tokio::test]
async fn an_index_page_lists_its_platforms_linking_to_their_pages() {
    let mut b = Browser::start().await;
    let mut children = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let config = serde_json::json!({"architecture": arch, "os": "linux", "variant": variant});
        let (digest, size, _) = push_image(
            &b,
            "library/multi",
            None,
            &config,
            &[arch.as_bytes()],
            serde_json::json!({}),
        )
        .await;
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        children.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size, "platform": platform,
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children,
        "annotations": {"org.opencontainers.image.version": "1.2.3"},
    });
    let (digest, _) = put_manifest(&b, "library/multi", Some("latest"), &index).await;
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let base = "/projects/library/repositories/multi/artifacts";
    let page = b.get(&format!("{base}/{digest}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let html = slashed(&page.html);
    assert!(
        html.contains("<span class=\"badge\">Image index</span>"),
        "{html}"
    );
    for (i, platform) in ["linux/amd64", "linux/arm64/v8"].into_iter().enumerate() {
        let child = children[i]["digest"].as_str().unwrap();
        let row = format!(
            "<tr><td>{platform}</td><td><a href=\"{base}/{child}\"><code title=\"{child}\">{}</code></a></td>",
            &child[7..19]
        );
        assert!(html.contains(&row), "{row} missing: {html}");
    }
    assert!(html.contains("org.opencontainers.image.version"));
    assert!(!html.contains("id=\"layers\""), "an index has no layers");
    assert!(!html.contains("id=\"config\""), "an index has no config");

    // A child's own page: its platform's config.
    let child = children[1]["digest"].as_str().unwrap();
    let page = b.get(&format!("{base}/{child}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<td>arm64</td>") && page.html.contains("<td>v8</td>"));
    assert!(page.html.contains("This artifact has no tags."));
}

#[tokio::test]
async fn referrers_appear_on_their_subjects_page_and_are_counted() {
    let mut b = Browser::start().await;
    let subject_digest = b.push("library/app", "v1").await;
    let lonely = b.push("library/app", "v2").await;
    let empty = put_blob(&b, "library/app", b"{}").await;
    let mut referrers = Vec::new();
    for (kind, content) in [
        ("application/vnd.example.sbom", b"sbom".as_slice()),
        ("application/vnd.dev.cosign.artifact.sig.v1+json", b"sig"),
    ] {
        let layer = put_blob(&b, "library/app", content).await;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": content.len()}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject_digest, "size": 1},
        });
        referrers.push(put_manifest(&b, "library/app", None, &manifest).await.0);
    }
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let base = "/projects/library/repositories/app/artifacts";
    let page = b.get(&format!("{base}/{subject_digest}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = slashed(&page.html);
    for (referrer, kind) in referrers.iter().zip([
        "application/vnd.example.sbom",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
    ]) {
        let row = format!(
            "<tr><td><code>{kind}</code></td><td><a href=\"{base}/{referrer}\"><code title=\"{referrer}\">"
        );
        assert!(html.contains(&row), "{row} missing: {html}");
    }
    assert!(!html.contains("No artifact refers to this one."));

    // The referrer's page names its subject, with a link; its empty config is not read.
    let page = b.get(&format!("{base}/{}", referrers[0])).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = slashed(&page.html);
    assert!(
        html.contains(&format!(
            "<a href=\"{base}/{subject_digest}\" id=\"subject\">"
        )),
        "{html}"
    );
    assert!(html.contains("<code>application/vnd.example.sbom</code>"));
    assert!(html.contains("This is not an image config; its content is not shown."));

    // The repository page counts them, for the subject only.
    let repo = slashed(&b.get("/projects/library/repositories/app").await.html);
    let counted = format!("<a href=\"{base}/{subject_digest}#referrers\">2 referrers</a>");
    assert!(repo.contains(&counted), "{repo}");
    assert_eq!(repo.matches("referrers</a>").count(), 1, "{repo}");
    assert!(!repo.contains(&format!("{base}/{lonely}#referrers")));
    // The referrers themselves are listed under their subject, not as artifacts of their own.
    for referrer in &referrers {
        assert!(
            !repo.contains(&format!("name=\"digest\" value=\"{referrer}\"")),
            "{referrer} is listed: {repo}"
        );
    }
    assert!(repo.contains(&format!("name=\"digest\" value=\"{subject_digest}\"")));
    let counts = b
        .app
        .registry
        .meta()
        .referrer_counts(
            "library/app",
            &[subject_digest.clone(), lonely.clone(), referrers[0].clone()],
        )
        .await
        .unwrap();
    assert_eq!(counts.get(&subject_digest), Some(&2));
    assert_eq!(counts.len(), 1, "{counts:?}");
}

#[tokio::test]
async fn artifact_pages_of_hidden_projects_and_unknown_digests_are_not_found() {
    let mut b = Browser::start().await;
    project(&b.app, "secret", false).await;
    user(&b.app, "outsider").await;
    let digest = b.push("secret/app", "v1").await;
    // Another tag name: another layer, another manifest.
    let other = b.push("library/other", "other").await;
    assert_ne!(other, digest);
    let path = format!("/projects/secret/repositories/app/artifacts/{digest}");

    // Anonymous: asked to sign in first, as for the private project itself.
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let to = page.headers[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with("/login?next=%2Fprojects%2Fsecret%2F"),
        "{to}"
    );
    // An outsider: not found, exactly like an artifact that does not exist.
    b.sign_in("outsider", "User-pass-123").await;
    let hidden = b.get(&path).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert!(
        hidden
            .html
            .contains("This page does not exist, or you may not see it.")
    );
    assert!(
        !hidden.html.contains("docker pull") && !hidden.html.contains("Overview"),
        "{}",
        hidden.html
    );

    b.cookies.clear();
    b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(b.get(&path).await.status, StatusCode::OK);
    let zeros = format!("sha256:{}", "0".repeat(64));
    for bad in [
        // Not digests.
        "/projects/secret/repositories/app/artifacts/sha256:xyz".to_owned(),
        "/projects/secret/repositories/app/artifacts/md5:abc".to_owned(),
        "/projects/secret/repositories/app/artifacts/sha256:".to_owned(),
        // A tag is not supported here.
        "/projects/secret/repositories/app/artifacts/v1".to_owned(),
        // Unknown digests, and one from another repository or project.
        format!("/projects/secret/repositories/app/artifacts/{zeros}"),
        format!("/projects/secret/repositories/app/artifacts/{other}"),
        format!("/projects/library/repositories/app/artifacts/{digest}"),
        format!("/projects/secret/repositories/nothing/artifacts/{digest}"),
        format!("/projects/nothing/repositories/app/artifacts/{digest}"),
        format!("/projects/secret/repositories/BAD/artifacts/{digest}"),
        format!("/projects/secret/repositories/artifacts/{digest}"),
        format!("/projects/secret/repositories/app/{digest}"),
    ] {
        let page = b.get(&bad).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}: {}", page.html);
        assert!(
            page.html
                .contains("This page does not exist, or you may not see it."),
            "{bad}"
        );
    }
}
