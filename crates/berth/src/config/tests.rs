//! Unit tests of `Config::load`: defaults, the file, environment overrides, and every error
//! reported at once.

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_need_no_file() {
    let c = Config::load(None, &no_env).unwrap();
    assert_eq!(c.listen_addr(), "127.0.0.1:5000".parse().unwrap());
    assert_eq!(c.external_url(c.listen_addr()), "http://127.0.0.1:5000");
    assert_eq!(c.database_url(), "sqlite://./berth-data/berth.db");
    assert_eq!(c.storage_path(), PathBuf::from("./berth-data/storage"));
    assert_eq!(
        c.external_url("0.0.0.0:80".parse().unwrap()),
        "http://localhost:80"
    );
}

#[test]
fn the_example_config_is_valid_and_complete() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/berth.example.toml");
    let c = Config::load(Some(&path), &no_env).unwrap();
    assert_eq!(c.listen, "127.0.0.1:5000");
}

#[test]
fn environment_overrides_the_file() {
    let f = write("listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/a\"\n");
    let env = |k: &str| match k {
        "BERTH_LISTEN" => Some("127.0.0.1:7000".to_owned()),
        "BERTH_EXTERNAL_URL" => Some("https://registry.example.com/".to_owned()),
        _ => None,
    };
    let c = Config::load(Some(f.path()), &env).unwrap();
    assert_eq!(c.listen, "127.0.0.1:7000");
    assert_eq!(
        c.external_url(c.listen_addr()),
        "https://registry.example.com"
    );
    assert_eq!(c.database_url(), "sqlite:///srv/a/berth.db");
}

#[test]
fn secrets_and_node_settings_come_through_the_given_environment_only() {
    let env = |k: &str| match k {
        "BERTH_ADMIN_PASSWORD" => Some("Admin-pass-1".to_owned()),
        "AWS_ACCESS_KEY_ID" => Some("env-key".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_owned()),
        "AWS_SESSION_TOKEN" => Some("env-token".to_owned()),
        "HOSTNAME" => Some("host-7".to_owned()),
        "BERTH_AUDIT_SYSLOG" => Some("logs:6514".to_owned()),
        "BERTH_JOBS_WORKERS" => Some("4".to_owned()),
        _ => None,
    };
    let c = Config::load(None, &env).unwrap();
    assert_eq!(c.auth.admin_password.as_deref(), Some("Admin-pass-1"));
    assert_eq!(
        c.s3_settings().credentials,
        Some((
            "env-key".to_owned(),
            "env-secret".to_owned(),
            Some("env-token".to_owned())
        ))
    );
    assert_eq!(
        (
            c.node_name.as_str(),
            c.audit.syslog.as_deref(),
            c.jobs.workers
        ),
        ("host-7", Some("logs:6514"), 4)
    );
    // Keys in the file win over the environment's.
    let f = write("[storage.s3]\naccess_key = \"file-key\"\nsecret_key = \"file-secret\"\n");
    let c = Config::load(Some(f.path()), &env).unwrap();
    assert_eq!(
        c.s3_settings().credentials,
        Some(("file-key".to_owned(), "file-secret".to_owned(), None))
    );
    // Nothing given: no credentials, no password.
    let c = Config::load(None, &no_env).unwrap();
    assert_eq!(
        (c.s3_settings().credentials, c.auth.admin_password),
        (None, None)
    );
    // Bad values of the new settings are reported.
    let bad = |k: &str| match k {
        "BERTH_AUDIT_SYSLOG" => Some("no-port".to_owned()),
        "BERTH_JOBS_WORKERS" => Some("0".to_owned()),
        "BERTH_AUDIT_PURGE_SCHEDULE" => Some("every day".to_owned()),
        "BERTH_METRICS_LISTEN" => Some("nowhere".to_owned()),
        _ => None,
    };
    let errors = Config::load(None, &bad).unwrap_err().0.join("\n");
    for key in [
        "audit.syslog",
        "jobs.workers",
        "audit.purge_schedule",
        "metrics.listen",
    ] {
        assert!(errors.contains(key), "{key}: {errors}");
    }
}

#[test]
fn storage_tls_redis_and_project_settings_are_checked() {
    let f = write(
        "[storage]\ndriver = \"s3\"\n[storage.s3]\npart_size_mb = 1\nwriter_lease_secs = 1\n\
         access_key = \"a\"\nprefix = \"no-slash\"\n[tls]\ncert_file = \"/c.pem\"\n\
         [redis]\nurl = \"memcached://u:hunter2@h\"\n[auth]\nproject_creation = \"some\"\n",
    );
    let e = Config::load(Some(f.path()), &no_env)
        .unwrap_err()
        .to_string();
    for expected in [
        "storage.s3.bucket is required",
        "part_size_mb must be at least 5",
        "writer_lease_secs must be at least 3",
        "access_key and secret_key go together",
        "storage.s3.prefix = \"no-slash\"",
        "tls.cert_file and tls.key_file go together",
        "redis.url",
        "auth.project_creation",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in {e}");
    }
    assert!(!e.contains("hunter2"), "passwords are never shown: {e}");
    let env = |k: &str| match k {
        "BERTH_STORAGE_DRIVER" => Some("s3".to_owned()),
        "BERTH_S3_BUCKET" => Some("registry".to_owned()),
        "BERTH_S3_ENDPOINT" => Some("http://rgw:7480".to_owned()),
        _ => None,
    };
    let c = Config::load(None, &env).unwrap();
    let s3 = c.s3_settings();
    assert!(s3.path_style, "path style by default with an endpoint");
    assert_eq!((s3.part_size, s3.redirect), (10 << 20, None));
    assert_eq!(
        c.storage_description(),
        "s3 bucket registry at http://rgw:7480"
    );
}

#[test]
fn the_driver_the_database_kind_and_the_log_format_are_parsed_once() {
    let c = Config::load(None, &no_env).unwrap();
    assert_eq!(
        (c.storage.driver, c.database.kind, c.log.format),
        (
            StorageDriver::Filesystem,
            DatabaseKind::Sqlite,
            LogFormat::Text
        )
    );
    assert_eq!(c.cache_place(), CachePlace::Process);
    let f = write(
        "[storage]\ndriver = \"s3\"\n[storage.s3]\nbucket = \"b\"\n[log]\nformat = \"json\"\n",
    );
    let env =
        |k: &str| (k == "BERTH_DATABASE_URL").then(|| "mariadb://u:p@db:3306/berth".to_owned());
    let c = Config::load(Some(f.path()), &env).unwrap();
    assert_eq!(
        (c.storage.driver, c.database.kind, c.log.format),
        (StorageDriver::S3, DatabaseKind::MySql, LogFormat::Json)
    );
    assert_eq!(c.cache_place(), CachePlace::Unshared);
    assert_eq!(c.log.format.to_string(), "json");
}

#[test]
fn unknown_keys_and_bad_values_are_all_reported() {
    let f = write(
        "lisen = \"x\"\n[storage]\nfsynk = true\ndriver = \"floppy\"\n[log]\nformat = \"xml\"\n",
    );
    let e = Config::load(Some(f.path()), &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown key `lisen`"), "{e}");
    assert!(e.contains("unknown key `storage.fsynk`"), "{e}");
    assert!(e.contains("storage.driver = \"floppy\""), "{e}");
    assert!(e.contains("log.format = \"xml\""), "{e}");
    let f = write("[database]\nmax_connections = \"many\"\n");
    let e = Config::load(Some(f.path()), &no_env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_connections"), "{e}");
    let env = |k: &str| (k == "BERTH_LISTEN").then(|| "nonsense".to_owned());
    let e = Config::load(None, &env).unwrap_err().to_string();
    assert!(e.contains("listen = \"nonsense\""), "{e}");
    let env = |k: &str| (k == "BERTH_DATABASE_URL").then(|| "postgres://u:secret@x/y".to_owned());
    let e = Config::load(None, &env).unwrap_err().to_string();
    assert!(e.contains("database.url"), "{e}");
    assert!(!e.contains("secret"), "passwords are never shown: {e}");
    let env = |k: &str| (k == "BERTH_DATABASE_URL").then(|| "mysql://u:p@db:3306/berth".to_owned());
    let c = Config::load(None, &env).unwrap();
    assert_eq!(c.database_url_redacted(), "mysql://u:***@db:3306/berth");
    assert_eq!(berth_shared::redact("sqlite:///a/b.db"), "sqlite:///a/b.db");
    assert_eq!(berth_shared::redact("mysql://u@h/d"), "mysql://u@h/d");
}

#[test]
fn settings_start_from_the_file_and_pinned_ones_say_where() {
    let f = write(
        "[auth]\ntoken_lifetime_minutes = 45\nproject_creation = \"adminonly\"\n\
         [ldap]\nenabled = true\nurl = \"ldap://d.example\"\nbase_dn = \"dc=example\"\n\
         [settings]\npinned = [\"token_expiration\", \"ldap\"]\nrefresh_secs = 2\n",
    );
    let env = |k: &str| match k {
        "BERTH_LDAP_SEARCH_PASSWORD" => Some("s3cret".to_owned()),
        _ => None,
    };
    let c = Config::load(Some(f.path()), &env).unwrap();
    let base = c.settings_base();
    assert_eq!(base.initial.token_lifetime().as_secs(), 45 * 60);
    assert_eq!(
        base.initial.project_creation(),
        berth_auth::ProjectCreation::AdminOnly
    );
    assert_eq!(base.initial.auth_mode(), "ldap_auth");
    let ldap = base.initial.ldap().unwrap();
    assert_eq!(ldap.url, "ldap://d.example");
    assert_eq!(ldap.search_password.as_deref(), Some("s3cret"));
    let file = f.path().display().to_string();
    assert_eq!(
        base.pinned.get("token_expiration").map(String::as_str),
        Some(format!("the configuration file {file}").as_str())
    );
    assert_eq!(
        base.pinned.get("ldap_search_password").map(String::as_str),
        Some("the environment (BERTH_LDAP_SEARCH_PASSWORD)")
    );
    assert!(base.pinned.contains_key("ldap_group_admin_dn"));
    assert!(!base.pinned.contains_key("auth_mode"));
    assert!(!base.pinned.contains_key("project_creation_restriction"));

    let env = |k: &str| match k {
        "BERTH_SETTINGS_PINNED" => Some("auth_mode, nosuch".to_owned()),
        _ => None,
    };
    let f = write("[auth]\ntoken_lifetime_minutes = 2000\n[settings]\nrefresh_secs = 0\n");
    let e = Config::load(Some(f.path()), &env).unwrap_err().to_string();
    for expected in [
        "settings.pinned: unknown setting \"nosuch\"",
        "auth.token_lifetime_minutes = 2000: at most 1440",
        "settings.refresh_secs must be 1 to 3600",
    ] {
        assert!(e.contains(expected), "missing {expected:?} in {e}");
    }
}
