// An in-test SSH server in the gateway's place, for the providers' SSH paths: it accepts any key, runs
// nothing (every command's standard input, the script, is recorded and answered with exit 0), and
// forwards connections to this machine's loopback, failing the channel as sshd does when nothing
// listens there ("Connection refused") or, with `forwarding: false`, refusing to forward at all.
import * as net from "net";
import { Server, type Connection } from "ssh2";
import type { AddressInfo } from "net";
import { sshKeyPair } from "./ssh-keys";

export class FakeSshd {
    /** The scripts run, in order (what `bash -s` read). */
    readonly scripts: string[] = [];
    private readonly clients = new Set<Connection>();
    private readonly server: Server;

    constructor(options: { forwarding?: boolean } = {}) {
        this.server = new Server({ hostKeys: [sshKeyPair().private] }, (client) => {
            this.clients.add(client);
            client.on("close", () => this.clients.delete(client));
            client.on("error", () => undefined);
            client.on("authentication", (ctx) => ctx.accept());
            client.on("ready", () => {
                client.on("session", (acceptSession) => {
                    acceptSession().on("exec", (acceptExec) => {
                        const stream = acceptExec();
                        let script = "";
                        stream.on("data", (d: Buffer) => (script += d.toString()));
                        stream.on("end", () => {
                            this.scripts.push(script);
                            stream.exit(0);
                            stream.end();
                        });
                    });
                });
                if (options.forwarding !== false) {
                    // Without a listener ssh2 refuses every forward as "administratively prohibited", as sshd with AllowTcpForwarding no.
                    client.on("tcpip", (accept, reject, info) => {
                        const socket = net.connect(info.destPort, "127.0.0.1");
                        socket.once("error", () => reject());
                        socket.once("connect", () => {
                            const channel = accept();
                            socket.removeAllListeners("error");
                            socket.on("error", () => channel.destroy());
                            channel.pipe(socket).pipe(channel);
                        });
                    });
                }
            });
        });
    }

    async start(): Promise<number> {
        await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
        return (this.server.address() as AddressInfo).port;
    }

    stop(): Promise<void> {
        for (const client of this.clients) client.end();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
}
