//! `GET /api/v1/links/{id}/qr`: the link's QR code as SVG or PNG. It encodes
//! `{short_url}?qr=1`, so a scan is told apart from a click (`qr.scanned`).
//!
//! Options: `format=svg|png` (default `svg`), `size` in pixels (64–2048, default 512),
//! `margin` in modules (0–16, default 4, the quiet zone scanners need), `level=L|M|Q|H` error
//! correction (default `M`), `fg` and `bg` colours as `rrggbb` hex (with or without `#`).

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use image::{ImageBuffer, ImageFormat, Rgb};
use linkkit_core::LinkId;
use qrcode::{Color, EcLevel, QrCode};

use crate::auth::Workspace;
use crate::extract::RawQuery;
use crate::{ApiError, AppState};

const MIN_SIZE: u32 = 64;
const MAX_SIZE: u32 = 2048;
const MAX_MARGIN: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

#[derive(Debug, Clone, PartialEq)]
struct Options {
    format: Format,
    size: u32,
    margin: u32,
    level: EcLevel,
    fg: [u8; 3],
    bg: [u8; 3],
}

/// `?format=&size=&margin=&level=&fg=&bg=` of a QR code.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "parsed by `RawQuery`; described here for the document"
)]
pub(crate) struct QrParams {
    /// `svg` (default) or `png`.
    #[param(value_type = Option<QrFormat>)]
    format: Option<String>,
    /// Pixels, 64–2048 (default 512).
    #[param(minimum = 64, maximum = 2048)]
    size: Option<u32>,
    /// Quiet zone in modules, 0–16 (default 4).
    #[param(minimum = 0, maximum = 16)]
    margin: Option<u32>,
    /// Error correction: `L`, `M` (default), `Q` or `H`.
    #[param(value_type = Option<QrLevel>)]
    level: Option<String>,
    /// Foreground colour as `rrggbb` (default `000000`).
    #[param(pattern = "^#*[0-9A-Fa-f]{6}$")]
    fg: Option<String>,
    /// Background colour as `rrggbb` (default `ffffff`).
    #[param(pattern = "^#*[0-9A-Fa-f]{6}$")]
    bg: Option<String>,
}

/// The image format of a QR code.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "a vocabulary of the OpenAPI document")]
pub(crate) enum QrFormat {
    Svg,
    Png,
}

/// Error correction of a QR code, from lowest (`L`) to highest (`H`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "a vocabulary of the OpenAPI document")]
pub(crate) enum QrLevel {
    L,
    M,
    Q,
    H,
}

#[utoipa::path(
    get,
    path = "/links/{id}/qr",
    tag = "links",
    params(("id" = String, Path, description = "The link's id (`lnk_…`)"), QrParams),
    responses(
        (status = 200, description = "The QR code; it encodes `{short_url}?qr=1`", content(
            (String = "image/svg+xml"),
            (crate::schema::Png = "image/png"),
        )),
        (status = 404, description = "No such link in this workspace", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn link_qr(
    State(state): State<AppState>,
    Workspace(workspace): Workspace,
    Path(id): Path<String>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    let options = options(&query)?;
    let id = LinkId::parse(&id).map_err(|_| ApiError::NotFound("link"))?;
    let link = linkkit_store::links::get(&state.pool, &workspace, &id)
        .await?
        .ok_or(ApiError::NotFound("link"))?;
    let content = qr_content(&state.config.short_url(&link.slug));
    let code = QrCode::with_error_correction_level(content.as_bytes(), options.level).map_err(
        |error| ApiError::invalid("invalid_qr", format!("cannot encode this link: {error}")),
    )?;
    let (content_type, body) = match options.format {
        Format::Svg => ("image/svg+xml", render_svg(&code, &options).into_bytes()),
        Format::Png => ("image/png", render_png(&code, &options)?),
    };
    Ok((
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response())
}

/// What a link's QR code encodes.
pub fn qr_content(short_url: &str) -> String {
    format!("{short_url}?qr=1")
}

fn options(query: &RawQuery) -> Result<Options, ApiError> {
    let format = match query.get("format").unwrap_or("svg") {
        "svg" => Format::Svg,
        "png" => Format::Png,
        _ => {
            return Err(ApiError::invalid(
                "invalid_format",
                "format must be svg or png",
            ))
        }
    };
    let number =
        |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| match query.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "invalid_qr_option",
                        format!(
                            "{name} must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        };
    let level = match query.get("level").unwrap_or("M") {
        "L" => EcLevel::L,
        "M" => EcLevel::M,
        "Q" => EcLevel::Q,
        "H" => EcLevel::H,
        _ => {
            return Err(ApiError::invalid(
                "invalid_qr_option",
                "level must be L, M, Q or H",
            ))
        }
    };
    Ok(Options {
        format,
        size: number("size", 512, MIN_SIZE..=MAX_SIZE)?,
        margin: number("margin", 4, 0..=MAX_MARGIN)?,
        level,
        fg: colour(query.get("fg"), "fg", [0, 0, 0])?,
        bg: colour(query.get("bg"), "bg", [255, 255, 255])?,
    })
}

fn colour(value: Option<&str>, name: &str, default: [u8; 3]) -> Result<[u8; 3], ApiError> {
    let Some(text) = value else {
        return Ok(default);
    };
    let hex = text.trim_start_matches('#');
    let invalid = || {
        ApiError::invalid(
            "invalid_qr_option",
            format!("{name} must be a colour such as 1a2b3c"),
        )
    };
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid());
    Ok([channel(0)?, channel(2)?, channel(4)?])
}

/// Modules of the code, with the margin around them, and the size of one module in pixels.
fn layout(code: &QrCode, options: &Options) -> (u32, u32) {
    let modules = code.width() as u32 + 2 * options.margin;
    let scale = (options.size / modules).max(1);
    (modules, scale)
}

fn render_svg(code: &QrCode, options: &Options) -> String {
    let (modules, _) = layout(code, options);
    let hex = |c: [u8; 3]| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
    let mut path = String::new();
    let width = code.width();
    for (index, colour) in code.to_colors().iter().enumerate() {
        if *colour == Color::Dark {
            let x = (index % width) as u32 + options.margin;
            let y = (index / width) as u32 + options.margin;
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {modules} {modules}\" shape-rendering=\"crispEdges\"><rect width=\"{modules}\" height=\"{modules}\" fill=\"{bg}\"/><path d=\"{path}\" fill=\"{fg}\"/></svg>",
        size = options.size,
        bg = hex(options.bg),
        fg = hex(options.fg),
    )
}

fn render_png(code: &QrCode, options: &Options) -> Result<Vec<u8>, ApiError> {
    let (modules, scale) = layout(code, options);
    let width = code.width();
    let colours = code.to_colors();
    let side = modules * scale;
    let image = ImageBuffer::from_fn(side, side, |px, py| {
        let (mx, my) = (px / scale, py / scale);
        let inside = |m: u32| m >= options.margin && m < options.margin + width as u32;
        let dark = inside(mx)
            && inside(my)
            && colours[((my - options.margin) as usize) * width + (mx - options.margin) as usize]
                == Color::Dark;
        Rgb(if dark { options.fg } else { options.bg })
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(png.into_inner())
}
