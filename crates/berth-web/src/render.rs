//! Templates (`web/templates/*.html`, compiled in) rendered with minijinja. Every value is
//! HTML-escaped (names, tags and annotations hold whatever a pusher chose); `t(key, …)` is the
//! request's language.

use std::sync::Arc;

use fluent_bundle::FluentValue;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, State};

use crate::i18n::{Catalogues, Locale};

/// A template of `web/templates`, by name, compiled in.
macro_rules! template {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../../web/templates/", $name)),
        )
    };
}

/// The templates, by name, compiled in.
pub const TEMPLATES: [(&str, &str); 20] = [
    template!("layout.html"),
    template!("login.html"),
    template!("projects.html"),
    template!("project.html"),
    template!("repository.html"),
    template!("members.html"),
    template!("robots.html"),
    template!("logs.html"),
    template!("settings.html"),
    template!("account.html"),
    template!("tabs.html"),
    template!("paging.html"),
    template!("error.html"),
    template!("artifact.html"),
    template!("admin_tabs.html"),
    template!("users.html"),
    template!("jobs.html"),
    template!("job_status.html"),
    template!("execution.html"),
    template!("configuration.html"),
];

/// The template environment.
pub fn environment(catalogues: Arc<Catalogues>) -> Environment<'static> {
    let mut env = Environment::new();
    // `.html` templates escape every value (minijinja's default for that extension).
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env.add_function(
        "t",
        move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            let locale = state
                .lookup("locale")
                .and_then(|v| v.as_str().and_then(Locale::from_tag))
                .unwrap_or(Locale::En);
            let mut args: Vec<(String, FluentValue<'static>)> = Vec::new();
            for name in kwargs.args() {
                let value: Value = kwargs.get(name)?;
                let fluent = match value.as_i64() {
                    Some(n) => FluentValue::from(n),
                    None => FluentValue::from(value.to_string()),
                };
                args.push((name.to_owned(), fluent));
            }
            let borrowed: Vec<(&str, FluentValue<'_>)> =
                args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            Ok(catalogues.text(locale, key, &borrowed))
        },
    );
    env
}

/// The `t("…")` and `t('…')` keys a template source uses. A key the template completes
/// (`t("action-" ~ name)`) is returned with a trailing `*`: some key must start with it.
pub fn used_keys(source: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for (i, _) in source.match_indices("t(") {
        let boundary = i == 0 || !source.as_bytes()[i - 1].is_ascii_alphanumeric();
        let rest = &source[i + 2..];
        if let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'')
            && boundary
            && let Some(end) = rest[1..].find(quote)
        {
            let key = &rest[1..1 + end];
            let completed = rest[2 + end..].trim_start().starts_with('~');
            keys.push(if completed {
                format!("{key}*")
            } else {
                key.to_owned()
            });
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{SOURCES, keys};

    #[test]
    fn every_key_a_template_uses_is_in_every_catalogue() {
        let mut used = 0;
        for (name, source) in TEMPLATES {
            for key in used_keys(source) {
                used += 1;
                for (locale, catalogue) in SOURCES {
                    let known = keys(catalogue);
                    let found = match key.strip_suffix('*') {
                        Some(prefix) => known.iter().any(|k| k.starts_with(prefix)),
                        None => known.contains(&key),
                    };
                    assert!(found, "{name} uses {key}, missing from {}", locale.tag());
                }
            }
        }
        assert!(used > 30, "only {used} keys found: the scanner is broken");
        assert_eq!(
            used_keys(r#"{{ t("a-b") }} {{ t('c', n=1) }} {{ alt("x") }} {{ t("d-" ~ x) }}"#),
            ["a-b", "c", "d-*"]
        );
    }

    #[test]
    fn every_page_renders_in_every_language() {
        let env = environment(Arc::new(Catalogues::load()));
        let project = minijinja::context! { name => "team", public => false };
        let row = minijinja::context! {
            name => "te am", public => true, created => "x", created_iso => "y",
            artifacts => 3, updated => "x", updated_iso => "y",
        };
        for locale in ["en", "zh-CN"] {
            for user in [None, Some("alice")] {
                let ctx = minijinja::context! {
                    locale, user, csrf => "tok", path => "/p", next => "/projects", username => "",
                    error => "bad", message => "m", query => "q", total => 30, page => 2, pages => 3,
                    page_query => "q=x&", projects => vec![row.clone()], repositories => vec![row.clone()],
                    project => project.clone(), registry_host => "reg.example:5000",
                    directory_user => false, password_error => "weak",
                    profile => minijinja::context! { email => "a@b", realname => "A", comment => "c" },
                    may_read_logs => true, may_update => true, saved => true, delete_error => "e", is_admin => true, total_entries => 1,
                    operations => vec!["create", "pull"],
                    filters => minijinja::context! { user => "u", operation => "pull", resource => "r", from => "", to => "" },
                    entries => vec![minijinja::context! {
                        time => "x", time_iso => "y", user => "bob", operation => "delete",
                        resource_type => "artifact", resource => "team/app@sha256:ab",
                        address => "127.0.0.1", success => false, detail => "why",
                    }],
                    may_create => true, may_push => true, may_delete => true, new_name => "x", create_error => "e", repository => "team/app",
                    tab => "members", may_read_members => true, may_manage => true,
                    new_member => "bob", add_error => "e", may_read_robots => true,
                    secret_name => "robot$team+ci", secret => "s3cret", form_name => "ci",
                    form_error => "e", robots => vec![minijinja::context! {
                        id => 1, name => "robot$team+ci", description => "d",
                        grants => vec![("*", vec!["pull"]), ("team", vec!["pull", "push"])],
                        disabled => false,
                        expires => "x", expires_iso => "y",
                    }],
                    roles => vec![minijinja::context! { id => 2, key => "role-developer" }],
                    members => vec![minijinja::context! {
                        id => 1, name => "bob", group => false, role_key => "role-developer",
                    }],
                    short => "app", artifacts => vec![minijinja::context! {
                        tags => vec!["v1"], digest => "sha256:ab", short_digest => "ab",
                        type_key => "type-index", platforms => 2, size => "1 KB",
                        pushed => "x", pushed_iso => "y", referrers => 2, href => "/a",
                    }],
                };
                let admin = minijinja::context! {
                    admin_tab => "jobs", form_projects => "team *", action => "/admin/robots",
                    new_username => "bob", new_error => "e",
                    users => vec![minijinja::context! {
                        id => 3, username => "bob", realname => "Bob", email => "b@x", admin => true,
                        disabled => true, directory => false, me => false, created => "x",
                        created_iso => "y",
                    }],
                    queues => vec![minijinja::context! {
                        kind => "audit-purge", pending => 2, running => 1, paused => true, waiting => 3,
                    }],
                    nodes => vec![minijinja::context! {
                        node => "n1", host => "h", workers => 4, heartbeat => ("x", "y"),
                    }],
                    schedules => vec![minijinja::context! {
                        name => "s", kind => "upload-purge", cron => "@every 1h", paused => false,
                        next => ("x", "y"), last => ("x", "y"),
                    }],
                    executions => vec![minijinja::context! {
                        id => 7, kind => "count", trigger => "schedule", created_by => "admin",
                        status => "Error", jobs => [2, 0, 0, 1, 1, 0], started => ("x", "y"),
                        ended => ("x", "y"),
                    }],
                    execution => minijinja::context! {
                        id => 7, kind => "count", trigger => "manual", created_by => "admin",
                        status => "Running", jobs => [1, 0, 1, 0, 0, 0], started => ("x", "y"),
                        ended => (),
                    },
                    jobs => vec![minijinja::context! {
                        id => 9, kind => "count", state => "running", attempts => 1,
                        max_attempts => 3, node => "n1", error => "boom", params => "{}",
                        stop_requested => false, final_state => false, started => ("x", "y"),
                        ended => (),
                    }],
                    total_jobs => 2, e => minijinja::context! { status => "Error" }, auth_enabled => false, ping_ok => false, ping_message => "refused",
                    sections => vec![minijinja::context! {
                        name => "auth", fields => vec![
                            minijinja::context! { key => "auth_mode", kind => "choice", value => "db_auth", choices => vec!["db_auth", "ldap_auth"], editable => true, pinned_by => () },
                            minijinja::context! { key => "ldap_starttls", kind => "bool", checked => true, editable => false, pinned_by => "the configuration file /etc/b.toml" },
                            minijinja::context! { key => "ldap_search_password", kind => "secret", set => true, editable => true },
                            minijinja::context! { key => "ldap_timeout", kind => "number", value => "5", editable => true },
                        ],
                    }],
                    log => minijinja::context! {
                        job => 9, lines => vec![minijinja::context! {
                            at => ("x", "y"), level => "info", message => "step 1",
                        }],
                    },
                };
                let ctx = minijinja::context! { ..ctx, ..admin };
                let ctx = minijinja::context! { ..ctx, ..artifact_sample("shown") };
                for (name, _) in TEMPLATES {
                    let html = env
                        .get_template(name)
                        .and_then(|t| t.render(&ctx))
                        .unwrap_or_else(|e| panic!("{name} in {locale}: {e:#}"));
                    assert!(!html.contains("-title\""), "{name}: untranslated key");
                }
            }
        }
    }

    /// The values of `artifact.html`, with its config in `state`.
    fn artifact_sample(state: &str) -> minijinja::Value {
        let link =
            minijinja::context! { digest => "sha256:cd", short_digest => "cd", href => "/a" };
        let when = minijinja::context! { text => "x", iso => "y" };
        minijinja::context! {
            artifact => minijinja::context! {
                digest => "sha256:ab", short_digest => "ab", media_type => "m", artifact_type => "t",
                type_key => "type-image", size => "1 KB", pushed => "x", pushed_iso => "y",
                subject => link.clone(), manifest => "{\"a\": \"<b>\"}",
            },
            tags => vec![minijinja::context! { name => "v1", pushed => "x", pushed_iso => "y" }],
            config => minijinja::context! {
                state, media_type => "m", digest => "sha256:ef", size => "1 KB", os => "linux",
                os_version => "10", architecture => "arm64", variant => "v8", created => when.clone(),
                author => "a", user => "u", working_dir => "/w", entrypoint => "[\"sh\"]",
                cmd => "[\"x\"]", env => vec!["A=1"], env_total => 600, ports => vec!["80/tcp"],
                labels => vec![minijinja::context! { key => "k", value => "v" }], labels_total => 1,
            },
            config_limit => "1.05 MB",
            layers => vec![minijinja::context! {
                number => 1, media_type => "m", digest => "sha256:ef", short_digest => "ef", size => "1 KB",
            }],
            layers_total => 501,
            history => vec![minijinja::context! {
                number => 1, created => when, created_by => "RUN x", comment => "c", empty_layer => true,
            }],
            history_total => 1,
            children => vec![minijinja::context! {
                platform => "linux/arm64/v8", os_version => "", media_type => "m", artifact_type => "",
                size => "1 KB", link => link.clone(),
            }],
            children_total => 1,
            annotations => vec![minijinja::context! { key => "k", value => "v" }],
            annotations_total => 1,
            referrers => vec![minijinja::context! {
                artifact_type => "t", media_type => "m", tags => vec!["sig"], size => "1 KB",
                pushed => "x", pushed_iso => "y", link,
            }],
            referrers_total => 1,
        }
    }

    #[test]
    fn the_artifact_page_says_why_a_config_is_not_shown() {
        let env = environment(Arc::new(Catalogues::load()));
        let page = env.get_template("artifact.html").unwrap();
        for (state, en, zh) in [
            ("shown", "arm64", "arm64"),
            (
                "missing",
                "The config blob is not in storage.",
                "存储中没有该配置 blob。",
            ),
            (
                "too-large",
                "The config is larger than 1.05 MB",
                "配置大于 1.05 MB",
            ),
            (
                "unreadable",
                "The config could not be read",
                "无法从存储读取配置",
            ),
            (
                "invalid",
                "The config is not valid JSON.",
                "配置不是有效的 JSON。",
            ),
            ("other", "This is not an image config", "这不是镜像配置"),
        ] {
            for (locale, text) in [("en", en), ("zh-CN", zh)] {
                let ctx = minijinja::context! {
                    locale, csrf => "tok", path => "/p", project => "team", short => "app",
                    repository => "team/app", registry_host => "reg.example",
                    ..artifact_sample(state)
                };
                let html = page.render(ctx).unwrap();
                assert!(html.contains(text), "{state} in {locale}: {html}");
                // The build history belongs to a config that was read.
                assert_eq!(html.contains("RUN x"), state == "shown", "{state}");
                assert!(html.contains("&lt;b&gt;"), "the manifest is escaped");
            }
        }
    }

    #[test]
    fn templates_compile_and_escape() {
        let env = environment(Arc::new(Catalogues::load()));
        for (name, _) in TEMPLATES {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let html = env
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! {
                locale => "en", csrf => "tok", path => "/x", message => "<script>alert(1)</script>",
            })
            .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>alert"));
    }
}
