//! Who visited: device class, browser and OS from the User-Agent (woothee), and whether the
//! visitor is a crawler or a link-preview bot.

use woothee::parser::Parser;

/// What the User-Agent says about a visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// `Mobile`, `Desktop`, `Tablet`, `Bot` or `Unknown`.
    pub device: &'static str,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub is_bot: bool,
}

/// Substrings (lowercase) that mark crawlers and link-preview fetchers woothee does not know.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "facebookexternalhit",
    "facebookcatalog",
    "whatsapp",
    "slack",
    "twitter",
    "telegram",
    "discord",
    "linkedin",
    "embedly",
    "skypeuripreview",
    "preview",
    "curl/",
    "wget/",
    "headlesschrome",
    "lighthouse",
    "pingdom",
    "monitor",
];

pub fn classify_user_agent(user_agent: &str) -> Visitor {
    let lowered = user_agent.to_ascii_lowercase();
    let parsed = Parser::new().parse(user_agent);
    let known_crawler = parsed.as_ref().is_some_and(|p| p.category == "crawler");
    let is_bot = known_crawler || BOT_MARKERS.iter().any(|marker| lowered.contains(marker));
    let known = |value: &str| (!value.is_empty() && value != "UNKNOWN").then(|| value.to_owned());
    let browser = parsed.as_ref().and_then(|p| known(p.name));
    let os = parsed.as_ref().and_then(|p| known(p.os));
    let device = if is_bot {
        "Bot"
    } else if is_tablet(&lowered) {
        "Tablet"
    } else {
        match parsed.as_ref().map(|p| p.category) {
            Some("smartphone" | "mobilephone") => "Mobile",
            Some("pc") => "Desktop",
            _ => "Unknown",
        }
    };
    Visitor {
        device,
        browser,
        os,
        is_bot,
    }
}

/// iPads, Android devices without "Mobile" in the UA (Google's rule for Android tablets), and
/// the common e-readers and tablets that say so.
fn is_tablet(ua: &str) -> bool {
    ua.contains("ipad")
        || (ua.contains("android") && !ua.contains("mobile"))
        || ua.contains("tablet")
        || ua.contains("kindle")
        || ua.contains("silk/")
        || ua.contains("playbook")
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
    const ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    const MAC_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";

    #[test]
    fn phones_are_mobile_and_desktops_are_desktop() {
        assert_eq!(classify_user_agent(IPHONE).device, "Mobile");
        assert_eq!(classify_user_agent(ANDROID_PHONE).device, "Mobile");
        assert_eq!(classify_user_agent(CHROME_WINDOWS).device, "Desktop");
        assert_eq!(classify_user_agent(MAC_SAFARI).device, "Desktop");
    }

    #[test]
    fn ipads_and_android_tablets_are_tablets() {
        assert_eq!(classify_user_agent(IPAD).device, "Tablet");
        assert_eq!(classify_user_agent(ANDROID_TABLET).device, "Tablet");
    }

    #[test]
    fn browser_and_os_are_named() {
        let visitor = classify_user_agent(CHROME_WINDOWS);
        assert_eq!(visitor.browser.as_deref(), Some("Chrome"));
        assert!(visitor.os.as_deref().unwrap().starts_with("Windows"));
        assert!(!visitor.is_bot);
    }

    #[test]
    fn crawlers_and_preview_fetchers_are_bots() {
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "WhatsApp/2.23.20.0",
            "Twitterbot/1.0",
            "curl/8.5.0",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; SomeCrawler/1.0)",
            "Mozilla/5.0 (compatible; YandexSpider/3.0)",
        ] {
            let visitor = classify_user_agent(ua);
            assert!(visitor.is_bot, "{ua} is a bot");
            assert_eq!(visitor.device, "Bot");
        }
    }

    #[test]
    fn an_unknown_agent_is_unknown_not_a_bot() {
        let visitor = classify_user_agent("");
        assert_eq!(visitor.device, "Unknown");
        assert!(!visitor.is_bot);
    }
}
