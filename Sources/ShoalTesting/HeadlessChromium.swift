import Foundation
import ShoalProcess

#if canImport(Glibc)
import Glibc
#endif

/// Headless Chromium for tests of web pages: the DOM after the page's scripts ran, or a
/// screenshot. Each run gets a fresh profile, home and cache in a temporary directory (removed
/// afterwards), is bounded by a timeout, and is killed — its whole process group, by its PID —
/// if it overruns.
///
/// `--virtual-time-budget` lets the page's timers run ahead of the clock: the run ends once that
/// much virtual time has passed. Virtual time stands still while a request is in flight, so a page
/// that long-polls can be driven from the test: the poll waits, in real time, until the test
/// changes something.
public struct HeadlessChromium: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The Chromium binary (or its Debian launcher script, which `exec`s it: same PID).
    public let executable: String

    public init(executable: String) {
        self.executable = executable
    }

    /// `$CHROMIUM` if set, else the first of `chromium`, `chromium-browser`, `google-chrome` on
    /// `PATH`; nil if there is none (`make setup` installs Debian's `chromium`).
    public static func find() -> HeadlessChromium? {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["CHROMIUM"], FileManager.default.isExecutableFile(atPath: given) {
            return HeadlessChromium(executable: given)
        }
        let directories = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in directories {
                let path = (directory as NSString).appendingPathComponent(name)
                if FileManager.default.isExecutableFile(atPath: path) { return HeadlessChromium(executable: path) }
            }
        }
        return nil
    }

    /// The page's DOM, serialized, once `virtualTimeBudget` of the page's time has passed; with
    /// `screenshot`, also a PNG of the `width` × `height` window at that path, at the same moment.
    public func dumpDOM(
        _ url: String, virtualTimeBudget: Duration, screenshot: String? = nil, width: Int = 1280, height: Int = 900,
        timeout: Duration = .seconds(60)
    ) async throws -> String {
        var arguments = ["--dump-dom", "--virtual-time-budget=\(Self.milliseconds(virtualTimeBudget))"]
        if let screenshot {
            try? FileManager.default.removeItem(atPath: screenshot)
            arguments += ["--screenshot=\(screenshot)", "--window-size=\(width),\(height)", "--hide-scrollbars"]
        }
        let dom = try await run(arguments, url: url, timeout: timeout)
        if let screenshot, !FileManager.default.fileExists(atPath: screenshot) {
            throw Failure(description: "chromium exited without writing \(screenshot)")
        }
        return dom
    }

    /// Runs Chromium on `url` with `arguments`; its stdout.
    private func run(_ arguments: [String], url: String, timeout: Duration) async throws -> String {
        let scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent("shoal-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let out = (scratch as NSString).appendingPathComponent("stdout")
        let err = (scratch as NSString).appendingPathComponent("stderr")
        var environment = ProcessInfo.processInfo.environment
        // Nothing of the user's: Chromium writes its profile, caches and crash reports under these.
        for variable in ["HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"] { environment[variable] = scratch }
        let command = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                       "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                       "--user-data-dir=\((scratch as NSString).appendingPathComponent("profile"))"]
            + arguments + [url]
        let child = try ChildProcess.spawn(command, environment: environment, standardOutput: .file(out), standardError: .file(err))
        // Spawned in a process group of its own (its PID): the renderer and GPU processes are in it too.
        let status: Int32
        if let finished = await child.waitForExit(timeout: timeout) {
            status = finished
            _ = kill(-child.pid, SIGKILL)  // Anything of it still lingering.
        } else {
            _ = kill(-child.pid, SIGKILL)
            child.send(SIGKILL)
            _ = await child.waitForExit()
            throw Failure(description: "chromium did not finish within \(timeout) on \(url); killed it (PID \(child.pid)). "
                          + "Its stderr ends: \(Self.tail(err))")
        }
        guard status == 0 else {
            throw Failure(description: "chromium exited with status \(status) on \(url). Its stderr ends: \(Self.tail(err))")
        }
        return (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return String(text.suffix(1500))
    }
}
