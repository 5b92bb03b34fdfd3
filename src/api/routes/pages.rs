//! The pages: one HTML shell with the style and script inlined (compiled into the binary, no
//! file system, no CDN), built once at start. The Content-Security-Policy allows exactly these
//! inline blocks (by their SHA-256) and requests to this server, nothing else.

use axum::extract::State;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::Shared;
use crate::api::SiteInfo;
use crate::api::auth::{base64_encode, home_of};
use crate::api::session::SessionUser;
use crate::config::Language;

const SHELL: &str = include_str!("../static/page.html");
pub(crate) const STYLE: &str = include_str!("../static/app.css");
pub(crate) const I18N: &str = include_str!("../static/i18n.js");
pub(crate) const LOGIN_BODY: &str = include_str!("../static/login.html");
pub(crate) const LOGIN_JS: &str = include_str!("../static/login.js");
const GUARD_BODY: &str = include_str!("../static/guard.html");
const GUARD_JS: &str = include_str!("../static/guard.js");
const NOTE_BODY: &str = include_str!("../static/note.html");
const ADMIN_BODY: &str = include_str!("../static/admin.html");
const ADMIN_JS: &str = include_str!("../static/admin.js");
const ADMIN_CSS: &str = include_str!("../static/admin.css");
const APPS_JS: &str = include_str!("../static/apps.js");
const REVIEW_BODY: &str = include_str!("../static/review.html");
const REVIEW_JS: &str = include_str!("../static/review.js");
const REVIEW_CSS: &str = include_str!("../static/review.css");
const GATEBOOK_BODY: &str = include_str!("../static/gatebook.html");
const GATEBOOK_JS: &str = include_str!("../static/gatebook.js");
const GATEBOOK_CSS: &str = include_str!("../static/gatebook.css");

/// One rendered page and its Content-Security-Policy.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    html: String,
    csp: HeaderValue,
}

impl Page {
    pub(crate) fn answer(&self, status: StatusCode) -> Response {
        let mut res = (status, Html(self.html.clone())).into_response();
        res.headers_mut()
            .insert(CONTENT_SECURITY_POLICY, self.csp.clone());
        res
    }
}

#[derive(Debug)]
pub(crate) struct Pages {
    login: Page,
    guard: Page,
    review: Page,
    admin: Page,
    gatebook: Page,
    forbidden: Page,
    not_found: Page,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn csp_hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64_encode(&Sha256::digest(text.as_bytes()))
    )
}

/// The site for the pages' scripts: a JSON data block (never run), `<` escaped so no text in it
/// can close the element.
fn site_json(site: &SiteInfo) -> String {
    let now = chrono::Utc::now().with_timezone(&site.timezone);
    let v = serde_json::json!({
        "id": site.id,
        "name": site.name,
        "timezone": site.timezone.name(),
        "offset": now.format("%:z").to_string(),
        "zone": now.format("%Z").to_string(),
        "language": match site.language { Language::Id => "id", Language::En => "en" },
    });
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn render(site: &SiteInfo, title: &str, class: &str, body: &str, script: &str) -> Page {
    render_with(site, title, class, body, script, STYLE, "")
}

/// [`render`] with the page's own `style` (app.css and more) and more CSP directives
/// (`extra_csp`, e.g. `media-src 'self'; ` for a page that plays clips).
pub(crate) fn render_with(
    site: &SiteInfo,
    title: &str,
    class: &str,
    body: &str,
    script: &str,
    style: &str,
    extra_csp: &str,
) -> Page {
    let lang = match site.language {
        Language::Id => "id",
        Language::En => "en",
    };
    let full_title = if site.name.is_empty() {
        format!("ronda · {title}")
    } else {
        format!("ronda · {title} · {}", site.name)
    };
    // the inserted style and script go in last, so nothing inside them is taken for a slot
    let html = SHELL
        .replace("{{LANG}}", lang)
        .replace("{{TITLE}}", &escape_html(&full_title))
        .replace("{{CLASS}}", class)
        .replace("{{BODY}}", body)
        .replace("{{SITE}}", &site_json(site))
        .replace("{{STYLE}}", style)
        .replace("{{SCRIPT}}", script);
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self' data: blob:; \
         {extra_csp}form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        csp_hash(script),
        csp_hash(style)
    );
    Page {
        html,
        csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'")),
    }
}

impl Pages {
    pub fn new(site: &SiteInfo) -> Pages {
        let with = |page_js: &str| format!("{I18N}\n{page_js}");
        let note = |key: &str, title: &str| {
            render(
                site,
                title,
                "note-page",
                &NOTE_BODY.replace("{{NOTE}}", key),
                &with(""),
            )
        };
        Pages {
            login: render(site, "login", "login-page", LOGIN_BODY, &with(LOGIN_JS)),
            guard: render(site, "pos jaga", "guard-page", GUARD_BODY, &with(GUARD_JS)),
            // the clips play from this server: media-src for the video element
            review: render_with(
                site,
                "tinjau kejadian",
                "review-page",
                REVIEW_BODY,
                &with(REVIEW_JS),
                &format!("{STYLE}\n{REVIEW_CSS}"),
                "media-src 'self'; ",
            ),
            // the camera picture is fetched, then shown from a blob: URL (img-src allows it)
            admin: render_with(
                site,
                "admin",
                "admin-page",
                ADMIN_BODY,
                &with(&format!("{ADMIN_JS}\n{APPS_JS}")),
                &format!("{STYLE}\n{ADMIN_CSS}"),
                "",
            ),
            // the entries' pictures are served from this server (img-src 'self')
            gatebook: render_with(
                site,
                "buku tamu",
                "gatebook-page",
                GATEBOOK_BODY,
                &with(GATEBOOK_JS),
                &format!("{STYLE}\n{GATEBOOK_CSS}"),
                "",
            ),
            forbidden: note("forbidden", "403"),
            not_found: note("not_found", "404"),
        }
    }

    pub fn forbidden(&self, _user: &SessionUser) -> Response {
        self.forbidden.answer(StatusCode::FORBIDDEN)
    }

    pub fn not_found(&self) -> Response {
        self.not_found.answer(StatusCode::NOT_FOUND)
    }
}

/// `GET /login`: the form; with a valid session, on to the home page instead.
pub(super) async fn login(State(st): State<Shared>, headers: HeaderMap) -> Response {
    match st.sessions.from_headers(&headers) {
        Some(u) => Redirect::to(home_of(u.role)).into_response(),
        None => st.pages.login.answer(StatusCode::OK),
    }
}

/// `GET /`: the home page of the user's role, or the login.
pub(super) async fn home(State(st): State<Shared>, headers: HeaderMap) -> Response {
    match st.sessions.from_headers(&headers) {
        Some(u) => Redirect::to(home_of(u.role)).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// `GET /guard`: the guard post.
pub(super) async fn guard(State(st): State<Shared>) -> Response {
    st.pages.guard.answer(StatusCode::OK)
}

/// `GET /review`: the reviewers' page (incident search, clip, snapshot, mark reviewed).
pub(super) async fn review(State(st): State<Shared>) -> Response {
    st.pages.review.answer(StatusCode::OK)
}

/// `GET /gatebook`: the gate log, the guest book and the daily report.
pub(super) async fn gatebook(State(st): State<Shared>) -> Response {
    st.pages.gatebook.answer(StatusCode::OK)
}

/// `GET /admin`: the line and zone editor.
pub(super) async fn admin(State(st): State<Shared>) -> Response {
    st.pages.admin.answer(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteInfo {
        SiteInfo {
            id: "rw9".into(),
            name: "Kepatihan </script><b>".into(),
            timezone: chrono_tz::Asia::Jakarta,
            language: Language::Id,
        }
    }

    #[test]
    fn pages_carry_no_injectable_site_text_and_hash_their_scripts() {
        let p = Pages::new(&site());
        let html = &p.guard.html;
        assert!(!html.contains("</script><b>"));
        assert!(html.contains("Kepatihan \\u003c/script\\u003e"));
        assert!(html.contains("\"timezone\":\"Asia/Jakarta\""));
        assert!(html.contains("\"offset\":\"+07:00\""));
        let csp = p.guard.csp.to_str().unwrap();
        assert!(csp.contains(&csp_hash(&format!("{I18N}\n{GUARD_JS}"))));
        assert!(!csp.contains("unsafe-inline"));
        assert!(!html.contains("{{"));
    }

    #[test]
    fn the_review_page_may_play_clips_from_this_server_only() {
        let p = Pages::new(&site());
        let csp = p.review.csp.to_str().unwrap();
        assert!(csp.contains("media-src 'self';"), "{csp}");
        assert!(csp.contains("img-src 'self'"), "{csp}");
        assert!(csp.contains(&csp_hash(&format!("{I18N}\n{REVIEW_JS}"))));
        assert!(csp.contains(&csp_hash(&format!("{STYLE}\n{REVIEW_CSS}"))));
        assert!(!csp.contains("unsafe-inline"));
        // the guard page plays nothing
        assert!(!p.guard.csp.to_str().unwrap().contains("media-src"));
        assert!(p.review.html.contains("id=\"video\""));
        assert!(!p.review.html.contains("{{"));
    }
}
