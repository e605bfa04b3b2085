import Foundation
import ShoalInstance
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
            guard let port = FreePort.find(host: "127.0.0.1") else { throw BenchError("no free port on 127.0.0.1") }
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

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func canConnect(port: Int) -> Bool {
    guard let fd = try? LoopbackSocket.connect(port: port) else { return false }
    close(fd)
    return true
}
