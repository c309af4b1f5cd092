//! What partners and approvers receive, in English and French, as plain text and HTML,
//! naming the inviting organisation (`SIGNUP_ORG_NAME`). Each function writes one kind of
//! message; [`Mail`](super::Mail) carries it to any [`Mailer`](super::Mailer).
//!
//! Values from outside (the organisation's name, an administrator's reason, links) are
//! escaped in the HTML part; nothing a partner typed (name, company) is ever inserted, so a
//! sign-up cannot make the tenant's sender carry someone else's text.

use time::OffsetDateTime;

use crate::domain::Lang;

/// A message's three parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Builds a message from paragraphs: the text part joins them with blank lines, the HTML
/// part wraps each (escaped) in `<p>`, a link as `<a>`.
enum Part<'a> {
    Para(String),
    Link(&'a str),
}

fn message(subject: String, parts: &[Part<'_>]) -> Message {
    let text = parts
        .iter()
        .map(|part| match part {
            Part::Para(text) => text.clone(),
            Part::Link(url) => (*url).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let body: String = parts
        .iter()
        .map(|part| match part {
            Part::Para(text) => format!("<p>{}</p>\n", escape(text)),
            Part::Link(url) => format!("<p><a href=\"{0}\">{0}</a></p>\n", escape(url)),
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
        escape(&subject)
    );
    Message {
        subject,
        text: text + "\n",
        html,
    }
}

/// `message` ending with where to ask for help and the privacy notice
/// ([`Branding`](crate::branding::Branding)), when set; `site` (the sign-up site's absolute
/// address) makes a privacy path such as `/privacy.html` a link a mail can carry.
pub fn with_footer(
    message: Message,
    lang: Lang,
    branding: &crate::branding::Branding,
    site: &str,
) -> Message {
    let privacy = branding.privacy_url.as_deref().and_then(|link| {
        if link.starts_with('/') {
            let base = url::Url::parse(site).ok()?;
            base.join(link).ok().map(|url| url.to_string())
        } else {
            Some(link.to_owned())
        }
    });
    let (ask, notice) = match lang {
        Lang::En => ("Questions? Contact", "How we handle your information:"),
        Lang::Fr => (
            "Des questions ? Contactez",
            "Comment nous traitons vos informations :",
        ),
    };
    let mut text = Vec::new();
    let mut html = Vec::new();
    if let Some(support) = &branding.support {
        text.push(format!("{ask} {}", support.text()));
        html.push(format!(
            "<p>{} <a href=\"{}\">{}</a></p>",
            escape(ask),
            escape(&support.href()),
            escape(support.text())
        ));
    }
    if let Some(link) = privacy {
        text.push(format!("{notice} {link}"));
        html.push(format!(
            "<p>{} <a href=\"{1}\">{1}</a></p>",
            escape(notice),
            escape(&link)
        ));
    }
    if text.is_empty() {
        return message;
    }
    let footer = format!("<hr>\n{}\n</body>", html.join("\n"));
    Message {
        text: format!("{}\n-- \n{}\n", message.text, text.join("\n")),
        html: message.html.replacen("</body>", &footer, 1),
        subject: message.subject,
    }
}

/// HTML-escapes `text` for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A date as partners read it (`2026-12-13 10:00 UTC`).
fn day_and_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// "Confirm your address": the link that proves it, valid `hours`.
pub fn verify(lang: Lang, org: &str, link: &str, hours: u32) -> Message {
    match lang {
        Lang::En => message(
            format!("Confirm your e-mail address for {org}"),
            &[
                Part::Para(format!(
                    "You asked for guest access to {org}. To confirm that this address is yours, open the link below and press the button on the page."
                )),
                Part::Link(link),
                Part::Para(format!(
                    "The link works once, for {hours} hours. If you did not ask for access, ignore this message: nothing happens without the click."
                )),
            ],
        ),
        Lang::Fr => message(
            format!("Confirmez votre adresse e-mail pour {org}"),
            &[
                Part::Para(format!(
                    "Vous avez demandé un accès invité à {org}. Pour confirmer que cette adresse est la vôtre, ouvrez le lien ci-dessous et appuyez sur le bouton de la page."
                )),
                Part::Link(link),
                Part::Para(format!(
                    "Le lien fonctionne une fois, pendant {hours} heures. Si vous n'avez rien demandé, ignorez ce message : rien ne se passe sans le clic."
                )),
            ],
        ),
    }
}

/// "Your request waits for approval", with the deadline.
pub fn pending(
    lang: Lang,
    org: &str,
    reference: &str,
    decide_by: Option<OffsetDateTime>,
) -> Message {
    let deadline = decide_by.map(day_and_time);
    match lang {
        Lang::En => message(
            format!("Your request for access to {org} is waiting for approval"),
            &[
                Part::Para(format!(
                    "Your address is confirmed. An administrator at {org} will now review your request (reference {reference})."
                )),
                Part::Para(match deadline {
                    Some(d) => format!(
                        "You will hear from us by {d} at the latest; a request nobody decides by then is closed."
                    ),
                    None => "You will hear from us when it is decided.".to_owned(),
                }),
            ],
        ),
        Lang::Fr => message(
            format!("Votre demande d'accès à {org} attend une approbation"),
            &[
                Part::Para(format!(
                    "Votre adresse est confirmée. Un administrateur de {org} va examiner votre demande (référence {reference})."
                )),
                Part::Para(match deadline {
                    Some(d) => format!(
                        "Vous aurez une réponse au plus tard le {d} ; une demande sans décision à cette date est close."
                    ),
                    None => "Vous aurez une réponse dès qu'une décision sera prise.".to_owned(),
                }),
            ],
        ),
    }
}

/// "You are approved": Microsoft sends the invitation.
pub fn approved(lang: Lang, org: &str, reference: &str, destination: &str) -> Message {
    match lang {
        Lang::En => message(
            format!("Your access to {org} is approved"),
            &[
                Part::Para(format!(
                    "Your request (reference {reference}) is approved. The invitation itself comes from Microsoft (invites@microsoft.com) on behalf of {org}; if it is not in your inbox within a few minutes, look in your junk mail."
                )),
                Part::Para("After you accept it, this is where to go:".to_owned()),
                Part::Link(destination),
            ],
        ),
        Lang::Fr => message(
            format!("Votre accès à {org} est approuvé"),
            &[
                Part::Para(format!(
                    "Votre demande (référence {reference}) est approuvée. L'invitation elle-même vient de Microsoft (invites@microsoft.com) au nom de {org} ; si elle n'est pas dans votre boîte de réception d'ici quelques minutes, regardez dans vos courriers indésirables."
                )),
                Part::Para("Une fois l'invitation acceptée, rendez-vous ici :".to_owned()),
                Part::Link(destination),
            ],
        ),
    }
}

/// "Your request was not approved", with the administrator's reason only when shared.
pub fn denied(lang: Lang, org: &str, reference: &str, reason: Option<&str>) -> Message {
    match lang {
        Lang::En => {
            let mut parts = vec![Part::Para(format!(
                "Your request for access to {org} (reference {reference}) was not approved."
            ))];
            if let Some(reason) = reason {
                parts.push(Part::Para(format!("The administrator's reason: {reason}")));
            }
            parts.push(Part::Para(
                "If you think this is a mistake, ask your contact at the organisation.".to_owned(),
            ));
            message(format!("Your request for access to {org}"), &parts)
        }
        Lang::Fr => {
            let mut parts = vec![Part::Para(format!(
                "Votre demande d'accès à {org} (référence {reference}) n'a pas été approuvée."
            ))];
            if let Some(reason) = reason {
                parts.push(Part::Para(format!(
                    "Motif donné par l'administrateur : {reason}"
                )));
            }
            parts.push(Part::Para(
                "Si vous pensez qu'il s'agit d'une erreur, adressez-vous à votre contact dans l'organisation.".to_owned(),
            ));
            message(format!("Votre demande d'accès à {org}"), &parts)
        }
    }
}

/// "Your access ends on …": sent once, `renewBeforeDays` before the end; renewing is
/// signing up again at `signup` (the page, in the partner's language).
pub fn renewal(
    lang: Lang,
    org: &str,
    reference: &str,
    ends_at: OffsetDateTime,
    signup: &str,
) -> Message {
    let end = day_and_time(ends_at);
    match lang {
        Lang::En => message(
            format!("Your access to {org} ends on {end}"),
            &[
                Part::Para(format!(
                    "The access you were given by {org} (reference {reference}) ends on {end}. To keep it, sign up again before then; the organisation's rules for your address apply again, including an administrator's approval where they ask for one."
                )),
                Part::Link(signup),
                Part::Para("If you no longer need it, there is nothing to do.".to_owned()),
            ],
        ),
        Lang::Fr => message(
            format!("Votre accès à {org} prend fin le {end}"),
            &[
                Part::Para(format!(
                    "L'accès que {org} vous a donné (référence {reference}) prend fin le {end}. Pour le garder, inscrivez-vous de nouveau avant cette date ; les règles de l'organisation pour votre adresse s'appliquent de nouveau, y compris l'approbation d'un administrateur lorsqu'elles la demandent."
                )),
                Part::Link(signup),
                Part::Para("Si vous n'en avez plus besoin, vous n'avez rien à faire.".to_owned()),
            ],
        ),
    }
}

/// To approvers: a request waits for a decision. Names the domain and the access asked
/// for, never the person (administrators read the rest signed in).
pub fn approver_pending(
    org: &str,
    reference: &str,
    domain: &str,
    access: &str,
    decide_by: Option<OffsetDateTime>,
    console: Option<&str>,
) -> Message {
    let mut parts = vec![Part::Para(format!(
        "A sign-up from {domain} for \"{access}\" is waiting for your decision (request {reference})."
    ))];
    if let Some(deadline) = decide_by {
        parts.push(Part::Para(format!(
            "It is denied automatically after {}.",
            day_and_time(deadline)
        )));
    }
    match console {
        Some(link) => {
            parts.push(Part::Para("Decide in the console:".to_owned()));
            parts.push(Part::Link(link));
        }
        None => parts.push(Part::Para(format!(
            "Decide with: b2b-signup requests approve {reference}  |  b2b-signup requests deny {reference} --reason \"...\""
        ))),
    }
    message(
        format!("[{org}] Sign-up request from {domain} waits for approval"),
        &parts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_message_has_both_parts_names_the_organisation_and_escapes_html() {
        let org = "Contoso <Ltd> & \"Co\"";
        let at = Some(datetime!(2026-12-13 10:00 UTC));
        for lang in [Lang::En, Lang::Fr] {
            for m in [
                verify(lang, org, "https://s.example/verify.html#t=x&y", 24),
                pending(lang, org, "01ABC", at),
                approved(lang, org, "01ABC", "https://myapps.microsoft.com"),
                denied(lang, org, "01ABC", Some("<b>no</b>")),
            ] {
                assert!(m.subject.contains(org), "{}", m.subject);
                assert!(m.text.contains(org));
                assert!(m.html.contains("Contoso &lt;Ltd&gt; &amp; &quot;Co&quot;"));
                assert!(!m.html.contains("<Ltd>") && !m.html.contains("<b>no"));
            }
        }
        let link = verify(
            Lang::Fr,
            "C",
            "https://s.example/fr/verify.html#t=a.b.c",
            24,
        );
        assert!(
            link.text
                .contains("https://s.example/fr/verify.html#t=a.b.c")
        );
        assert!(
            link.html
                .contains("href=\"https://s.example/fr/verify.html#t=a.b.c\"")
        );
        assert!(
            pending(Lang::En, "C", "R", at)
                .text
                .contains("2026-12-13 10:00 UTC")
        );
    }

    #[test]
    fn a_denial_carries_the_reason_only_when_given() {
        assert!(
            denied(Lang::En, "C", "R", Some("not a partner"))
                .text
                .contains("not a partner")
        );
        assert!(!denied(Lang::En, "C", "R", None).text.contains("reason"));
        assert!(!denied(Lang::Fr, "C", "R", None).text.contains("Motif"));
    }

    #[test]
    fn the_footer_carries_the_support_contact_and_the_privacy_notice_escaped() {
        use crate::branding::{Branding, SupportContact};
        let branding = Branding {
            logo_url: None,
            support: Some(SupportContact::Url(
                "https://contoso.example/help?a=1&b=<2>".into(),
            )),
            privacy_url: Some("/privacy.html?x=\"y\"".into()),
        };
        let site = "https://signup.contoso.example/partners/";
        for (lang, ask) in [
            (Lang::En, "Questions? Contact"),
            (Lang::Fr, "Des questions ?"),
        ] {
            let m = with_footer(
                approved(lang, "C", "R", "https://myapps.microsoft.com"),
                lang,
                &branding,
                site,
            );
            assert!(m.text.contains(ask), "{}", m.text);
            assert!(
                m.text.contains("https://contoso.example/help?a=1&b=<2>"),
                "the text part is plain: {}",
                m.text
            );
            assert!(m.html.contains(
                "<a href=\"https://contoso.example/help?a=1&amp;b=&lt;2&gt;\">https://contoso.example/help?a=1&amp;b=&lt;2&gt;</a>"
            ), "{}", m.html);
            // A path on the site becomes a link a mail can carry; the quote is escaped.
            assert!(
                m.html
                    .contains("href=\"https://signup.contoso.example/privacy.html?x=%22y%22\""),
                "{}",
                m.html
            );
            assert!(!m.html.contains("<2>") && m.html.ends_with("</body></html>\n"));
        }

        let mail = Branding {
            support: Some(SupportContact::Email("help@contoso.example".into())),
            ..Branding::default()
        };
        let m = with_footer(
            verify(Lang::En, "C", "https://l", 24),
            Lang::En,
            &mail,
            site,
        );
        assert!(
            m.html
                .contains("<a href=\"mailto:help@contoso.example\">help@contoso.example</a>")
        );
        assert!(
            m.text
                .ends_with("Questions? Contact help@contoso.example\n")
        );
        assert!(
            !m.text.contains("information"),
            "no privacy line when unset"
        );

        let plain = verify(Lang::En, "C", "https://l", 24);
        assert_eq!(
            with_footer(plain.clone(), Lang::En, &Branding::default(), site),
            plain
        );
    }
}
