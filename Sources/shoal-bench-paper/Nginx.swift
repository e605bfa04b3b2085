import Foundation
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// nginx as a reference reverse proxy in front of one service port: keep-alive on both sides,
/// buffers that hold a 500 KB answer in memory (as in `scripts/bench-dataplane`). Runs in the
/// foreground as our child (`daemon off`), so it is stopped by its PID.
enum Nginx {
    static func executable() -> String? {
        ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func start(upstreamPort: Int, directory: String) throws -> (process: ManagedProcess, port: Int) {
        guard let nginx = executable() else { throw BenchError("nginx is not installed (apt-get install nginx-light)") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var lastError: any Error = BenchError("nginx did not start")
        for _ in 0..<3 {
            let port = try freePort()
            let config = """
                worker_processes auto;
                pid \(directory)/nginx.pid;
                error_log \(directory)/error.log warn;
                events { worker_connections 4096; }
                http {
                    access_log off;
                    keepalive_requests 1000000;
                    client_body_temp_path \(directory)/client_body;
                    proxy_temp_path \(directory)/proxy;
                    fastcgi_temp_path \(directory)/fastcgi;
                    uwsgi_temp_path \(directory)/uwsgi;
                    scgi_temp_path \(directory)/scgi;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_buffering on;
                    proxy_buffers 16 64k;
                    proxy_busy_buffers_size 128k;
                    proxy_max_temp_file_size 0;
                    upstream service { server 127.0.0.1:\(upstreamPort); keepalive 128; keepalive_requests 1000000; }
                    server { listen 127.0.0.1:\(port); location / { proxy_pass http://service; } }
                }

                """
            try config.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
            // The shell prints the ready line, then becomes nginx (same PID): stopping it stops nginx.
            let process = try ManagedProcess.start(URL(fileURLWithPath: "/bin/sh"), [
                "-c", "echo ready; exec \"$0\" -p \"$1\" -e \"$1/error.log\" -c \"$1/nginx.conf\" -g 'daemon off;'",
                nginx, directory,
            ], readyPrefix: "ready", timeout: 10)
            for _ in 0..<50 where process.isRunning {
                if canConnect(port: port) { return (process, port) }
                usleep(100_000)
            }
            process.stop()
            lastError = BenchError("nginx did not listen on \(port): "
                + ((try? String(contentsOfFile: directory + "/error.log", encoding: .utf8)) ?? ""))
        }
        throw lastError
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw BenchError("bind: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
