// A throwaway certificate for tests that render TLS server blocks and check them with `nginx -t`.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

/** A self-signed certificate for `*.example.com` (one day), in a fresh temporary directory. */
export function selfSignedCert(): { certificatePath: string; privateKeyPath: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sgw-tls-"));
    const certificatePath = path.join(dir, "cert.pem");
    const privateKeyPath = path.join(dir, "key.pem");
    execFileSync(
        "openssl",
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=*.example.com", "-keyout", privateKeyPath, "-out", certificatePath],
        { stdio: "ignore" },
    );
    return { certificatePath, privateKeyPath };
}
