//! The UI's languages: Fluent catalogues (`web/locales/<language>/*.ftl`, compiled in), the
//! locale a request gets (its cookie, else `Accept-Language`, else English), and dates in its format.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The cookie that remembers a chosen language.
pub const LANGUAGE_COOKIE: &str = "lang";

/// A language the UI speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English (the default).
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Locale {
    /// Every locale, the default first.
    pub const ALL: [Locale; 2] = [Locale::En, Locale::ZhCn];

    /// The BCP 47 tag (`lang` attribute, cookie value).
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    /// The locale a tag names (`zh`, `zh-CN`, `zh-Hans…` are Simplified Chinese).
    pub fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.trim().to_ascii_lowercase();
        if tag == "en" || tag.starts_with("en-") {
            Some(Self::En)
        } else if tag == "zh" || tag == "zh-cn" || tag.starts_with("zh-hans") || tag == "zh-sg" {
            Some(Self::ZhCn)
        } else {
            None
        }
    }

    /// The locale of a request: the language cookie, else the first supported language of
    /// `Accept-Language` by weight, else English.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>) -> Self {
        if let Some(l) = cookie.and_then(Self::from_tag) {
            return l;
        }
        let mut best: Option<(f32, Self)> = None;
        for item in accept_language.unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("");
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Self::from_tag(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, l));
            }
        }
        best.map_or(Self::En, |(_, l)| l)
    }

    /// A Unix time as this locale writes a date and time (UTC).
    pub fn datetime(self, unix_secs: i64) -> String {
        let (y, mo, d, h, mi) = civil(unix_secs);
        match self {
            Self::En => {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                format!("{} {d}, {y} {h:02}:{mi:02} UTC", MONTHS[(mo - 1) as usize])
            }
            Self::ZhCn => format!("{y}年{mo}月{d}日 {h:02}:{mi:02} UTC"),
        }
    }
}

/// A size in bytes as people read it: decimal units, three significant digits
/// (`1.23 MB`). Both languages write sizes the same way.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.5 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value < 9.995 {
        2
    } else if value < 99.95 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {}", UNITS[unit])
}

/// The Unix time (seconds) at which a day written `YYYY-MM-DD` begins (UTC); `None` if it is
/// not such a day.
pub fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

/// A Unix time as RFC 3339 (`<time datetime>`).
pub fn iso(unix_secs: i64) -> String {
    let (y, mo, d, h, mi) = civil(unix_secs);
    let s = unix_secs.rem_euclid(60);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// (year, month, day, hour, minute) of a Unix time, UTC (Howard Hinnant's civil-from-days).
fn civil(unix_secs: i64) -> (i64, i64, i64, i64, i64) {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60)
}

/// The catalogue sources, compiled in: per language, one file per part of the UI
/// (`web/locales/<language>/*.ftl`).
pub const SOURCES: [(Locale, &[&str]); 2] = [
    (
        Locale::En,
        &[
            include_str!("../../../web/locales/en/ui.ftl"),
            include_str!("../../../web/locales/en/artifact.ftl"),
            include_str!("../../../web/locales/en/admin.ftl"),
        ],
    ),
    (
        Locale::ZhCn,
        &[
            include_str!("../../../web/locales/zh-CN/ui.ftl"),
            include_str!("../../../web/locales/zh-CN/artifact.ftl"),
            include_str!("../../../web/locales/zh-CN/admin.ftl"),
        ],
    ),
];

/// Every catalogue, parsed once.
pub struct Catalogues {
    bundles: Vec<(Locale, FluentBundle<FluentResource>)>,
}

impl std::fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalogues")
    }
}

impl Catalogues {
    /// Parses the compiled-in catalogues. A syntax error is a bug caught by the tests.
    pub fn load() -> Self {
        let bundles = SOURCES
            .iter()
            .map(|(locale, sources)| {
                let id: LanguageIdentifier = locale.tag().parse().unwrap_or_default();
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // No bidi isolation marks: the UI's languages are all left to right.
                bundle.set_use_isolating(false);
                for source in *sources {
                    let resource = FluentResource::try_new((*source).to_owned()).unwrap_or_else(
                        |(r, errors)| {
                            tracing::error!(locale = locale.tag(), ?errors, "catalogue errors");
                            r
                        },
                    );
                    if let Err(errors) = bundle.add_resource(resource) {
                        tracing::error!(locale = locale.tag(), ?errors, "catalogue conflicts");
                    }
                }
                (*locale, bundle)
            })
            .collect();
        Self { bundles }
    }

    fn bundle(&self, locale: Locale) -> &FluentBundle<FluentResource> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == locale)
            .map_or(&self.bundles[0].1, |(_, b)| b)
    }

    /// The text of `key` in `locale` with `args`; the key itself if it is missing (the
    /// catalogue tests make that a failure before it can ship).
    pub fn text(&self, locale: Locale, key: &str, args: &[(&str, FluentValue<'_>)]) -> String {
        let bundle = self.bundle(locale);
        let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) else {
            tracing::warn!(key, locale = locale.tag(), "missing UI text");
            return key.to_owned();
        };
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, value.clone());
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            tracing::warn!(
                key,
                locale = locale.tag(),
                ?errors,
                "UI text formatting errors"
            );
        }
        text.into_owned()
    }

    /// Whether `locale`'s catalogue has `key`.
    pub fn has(&self, locale: Locale, key: &str) -> bool {
        self.bundle(locale).has_message(key)
    }
}

/// The message keys of a language's catalogue files (lines `key = …`).
pub fn keys(sources: &[&str]) -> std::collections::BTreeSet<String> {
    sources
        .iter()
        .flat_map(|source| source.lines())
        .filter(|l| !l.starts_with([' ', '#', '\t']) && !l.is_empty())
        .filter_map(|l| l.split_once(" =").map(|(k, _)| k.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let en = keys(SOURCES[0].1);
        let zh = keys(SOURCES[1].1);
        assert!(en.len() > 20, "{en:?}");
        let only_en: Vec<_> = en.difference(&zh).collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        assert!(
            only_en.is_empty() && only_zh.is_empty(),
            "keys only in en: {only_en:?}; only in zh-CN: {only_zh:?}"
        );
        let catalogues = Catalogues::load();
        for locale in Locale::ALL {
            for key in &en {
                assert!(catalogues.has(locale, key), "{} lacks {key}", locale.tag());
            }
        }
    }

    #[test]
    fn plurals_and_placeholders() {
        let c = Catalogues::load();
        let n = |n: i64| [("count", FluentValue::from(n))];
        assert_eq!(c.text(Locale::En, "projects-count", &n(1)), "One project");
        assert_eq!(c.text(Locale::En, "projects-count", &n(3)), "3 projects");
        assert_eq!(c.text(Locale::ZhCn, "projects-count", &n(3)), "共 3 个项目");
        let user = [("user", FluentValue::from("<b>x</b>"))];
        assert_eq!(
            c.text(Locale::En, "signed-in-as", &user),
            "Signed in as <b>x</b>",
            "escaping is the template's job"
        );
        assert_eq!(c.text(Locale::En, "no-such-key", &[]), "no-such-key");
    }

    #[test]
    fn negotiation() {
        assert_eq!(Locale::negotiate(None, None), Locale::En);
        assert_eq!(
            Locale::negotiate(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Locale::ZhCn
        );
        assert_eq!(
            Locale::negotiate(None, Some("fr,en;q=0.5,zh;q=0.7")),
            Locale::ZhCn
        );
        assert_eq!(Locale::negotiate(None, Some("de-DE")), Locale::En);
        assert_eq!(Locale::negotiate(Some("en"), Some("zh-CN")), Locale::En);
        assert_eq!(
            Locale::negotiate(Some("xx"), Some("zh-Hans-CN")),
            Locale::ZhCn
        );
        assert_eq!(Locale::negotiate(None, Some("zh-TW")), Locale::En);
    }

    #[test]
    fn days() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2025-12-01"), Some(1_764_547_200));
        assert_eq!(parse_day("2000-02-29"), Some(951_782_400));
        for bad in [
            "2001-02-29",
            "2025-13-01",
            "2025-1-01",
            "25-01-01",
            "2025-01-01x",
            "",
            "x",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        for t in [0, 951_782_400, 1_764_547_200] {
            assert_eq!(parse_day(&iso(t)[..10]), Some(t));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1000), "1.00 KB");
        assert_eq!(size(1_234_567), "1.23 MB");
        assert_eq!(size(99_960), "100 KB");
        assert_eq!(size(999_999), "1.00 MB");
        assert_eq!(size(5 << 30), "5.37 GB");
    }

    #[test]
    fn dates() {
        assert_eq!(Locale::En.datetime(0), "Jan 1, 1970 00:00 UTC");
        assert_eq!(
            Locale::ZhCn.datetime(1_764_547_200),
            "2025年12月1日 00:00 UTC"
        );
        assert_eq!(iso(1_764_547_263), "2025-12-01T00:01:03Z");
        assert_eq!(Locale::En.datetime(951_782_400), "Feb 29, 2000 00:00 UTC");
    }
}
