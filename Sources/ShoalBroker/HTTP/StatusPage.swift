/// The broker's status page, served at `GET /` and `GET /status`: one self-contained HTML
/// document, `Resources/status.html` (inline CSS and JavaScript, no external assets, no build
/// step), that reads the API — `/v1/pool`, `/v1/services`, `/v1/leases`, `/v1/history` and the
/// `/v1/events` long poll — and redraws as soon as an event arrives, or every two seconds
/// without one.
///
/// Everything it shows comes from the JSON reads, so the page needs no token and changes nothing.
/// Elements the tests look for carry ids and `data-` attributes (`#history-chart`, `path.area`
/// with `data-service` and `data-last`, `body[data-updates]`).
enum StatusPage {
    /// The page's bytes, compiled into the binary (`.embedInCode`): a broker copied to another
    /// machine needs no file beside it.
    static let html: [UInt8] = PackageResources.status_html
}
