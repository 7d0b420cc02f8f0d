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
pub const TEMPLATES: [(&str, &str); 13] = [
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
                        actions => vec!["pull", "push"], disabled => false,
                        expires => "x", expires_iso => "y",
                    }],
                    roles => vec![minijinja::context! { id => 2, key => "role-developer" }],
                    members => vec![minijinja::context! {
                        id => 1, name => "bob", group => false, role_key => "role-developer",
                    }],
                    short => "app", artifacts => vec![minijinja::context! {
                        tags => vec!["v1"], digest => "sha256:ab", short_digest => "ab",
                        type_key => "type-index", platforms => 2, size => "1 KB",
                        pushed => "x", pushed_iso => "y",
                    }],
                };
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
