// The valid input property names of @pulumi/aws resources and invokes, read at run time from the package's
// own .d.ts files with the TypeScript compiler API (syntax only), so that the AWS mocks can flag names the
// provider would not know. Top-level unknown names never reach a mock (the generated constructors copy only
// the names they know; tsc catches those); nested ones do, unchanged, and tsc misses them whenever the nested
// object is not a fresh literal: that is what `unknownInputPaths` is for. Names arrive camelCase, as in the .d.ts.
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";

/** Schema of one object type: its property names, and for each the object schema(s) nested under it. */
export interface ObjectSchema {
    /** Interface it was read from, e.g. "ec2/instance.d.ts#InstanceArgs". */
    source: string;
    props: Map<string, PropSchema>;
}
export interface PropSchema {
    /** Names of the `inputs.<ns>.<Name>` types the property may hold (object or array of objects); empty for scalars. */
    nestedTypes: string[];
    /** True for free-form maps such as `tags` (`{ [key: string]: ... }`): keys are not checked. */
    freeMap: boolean;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export class AwsInputSchemas {
    private readonly root: string;
    private readonly files = new Map<string, ts.SourceFile | null>();
    private readonly interfaces = new Map<string, ObjectSchema | null>();
    private inputNamespaces?: Map<string, Map<string, ts.InterfaceDeclaration>>;

    constructor(awsPackageDir?: string) {
        this.root = awsPackageDir ?? path.dirname(require.resolve("@pulumi/aws/package.json"));
    }

    /**
     * Schema of a resource type token ("aws:ec2/instance:Instance"), an invoke token ("aws:ec2/getAmi:getAmi"),
     * or the provider ("pulumi:providers:aws"); undefined for anything not from @pulumi/aws (components,
     * dynamic resources, other packages) — the caller should skip those.
     */
    schemaFor(token: string): ObjectSchema | undefined {
        if (token === "pulumi:providers:aws") {
            return this.interfaceSchema("provider.d.ts", "ProviderArgs") ?? undefined;
        }
        const m = /^aws:([^/]+)\/([^:]+):(.+)$/.exec(token);
        if (!m) {
            return undefined;
        }
        const [, mod, file, member] = m;
        // Resources: `<Type>Args`; invokes (member starts lower-case): `<Function>Args` with a capital.
        // Invokes without arguments (getAccountAlias) or with positional ones (arnBuild) have none: undefined.
        const argsName = `${member[0].toUpperCase()}${member.slice(1)}Args`;
        for (const dts of this.candidateDts(mod, file)) {
            const schema = this.interfaceSchema(dts, argsName);
            if (schema) return schema;
        }
        return undefined;
    }

    /** Top-level valid input names of a token, sorted (for messages and for quick checks). */
    validInputNames(token: string): string[] | undefined {
        const schema = this.schemaFor(token);
        return schema ? [...schema.props.keys()].sort() : undefined;
    }

    /** Paths of input names the provider would not accept, e.g. ["rootBlockDevice.sizeGb"]; [] when all are known. */
    unknownInputPaths(token: string, inputs: Record<string, unknown>): string[] {
        const schema = this.schemaFor(token);
        if (!schema) {
            return [];
        }
        const bad: string[] = [];
        // Provider inputs: object-valued settings arrive JSON-encoded (provider.js), so only the top level is checked.
        this.check(schema, inputs, "", bad, token !== "pulumi:providers:aws");
        return bad;
    }

    private check(schema: ObjectSchema, value: Record<string, unknown>, prefix: string, bad: string[], deep: boolean): void {
        for (const [key, raw] of Object.entries(value)) {
            const at = prefix ? `${prefix}.${key}` : key;
            const prop = schema.props.get(key);
            if (!prop) {
                bad.push(at);
                continue;
            }
            if (!deep || prop.freeMap || prop.nestedTypes.length === 0) {
                continue;
            }
            const nested = prop.nestedTypes.map((t) => this.nestedSchema(t)).filter((s): s is ObjectSchema => !!s);
            if (nested.length === 0) {
                continue;
            }
            // A union of object types accepts the union of their names.
            const merged: ObjectSchema = { source: nested.map((n) => n.source).join("|"), props: new Map(nested.flatMap((n) => [...n.props])) };
            const visit = (v: unknown, p: string): void => {
                v = unwrapSecret(v);
                if (Array.isArray(v)) {
                    v.forEach((item, i) => visit(item, `${p}[${i}]`));
                } else if (v && typeof v === "object") {
                    this.check(merged, v as Record<string, unknown>, p, bad, deep);
                }
            };
            visit(raw, at);
        }
    }

    private nestedSchema(qualified: string): ObjectSchema | undefined {
        // qualified: "ec2.InstanceRootBlockDevice" or "ProviderDefaultTags" (root namespace of types/input.d.ts)
        const dot = qualified.lastIndexOf(".");
        const ns = dot < 0 ? "" : qualified.slice(0, dot);
        const name = dot < 0 ? qualified : qualified.slice(dot + 1);
        const key = `types/input.d.ts#${qualified}`;
        if (!this.interfaces.has(key)) {
            const decl = this.inputTypes().get(ns)?.get(name);
            this.interfaces.set(key, decl ? this.toSchema(key, decl) : null);
        }
        return this.interfaces.get(key) ?? undefined;
    }

    /** Index of every interface in types/input.d.ts by namespace ("" for the root). Parsed once (~5.7 MB). */
    private inputTypes(): Map<string, Map<string, ts.InterfaceDeclaration>> {
        if (!this.inputNamespaces) {
            const index = new Map<string, Map<string, ts.InterfaceDeclaration>>();
            const sf = this.parse("types/input.d.ts");
            const add = (ns: string, decl: ts.InterfaceDeclaration) => {
                if (!index.has(ns)) index.set(ns, new Map());
                index.get(ns)!.set(decl.name.text, decl);
            };
            const walk = (stmts: ts.NodeArray<ts.Statement>, ns: string) => {
                for (const s of stmts) {
                    if (ts.isInterfaceDeclaration(s)) {
                        add(ns, s);
                    } else if (ts.isModuleDeclaration(s) && s.body && ts.isModuleBlock(s.body)) {
                        walk(s.body.statements, ns ? `${ns}.${s.name.text}` : s.name.text);
                    }
                }
            };
            if (sf) walk(sf.statements, "");
            this.inputNamespaces = index;
        }
        return this.inputNamespaces;
    }

    private interfaceSchema(file: string, name: string): ObjectSchema | null {
        const key = `${file}#${name}`;
        if (!this.interfaces.has(key)) {
            const sf = this.parse(file);
            const decl = sf?.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
            this.interfaces.set(key, decl ? this.toSchema(key, decl) : null);
        }
        return this.interfaces.get(key) ?? null;
    }

    private toSchema(source: string, decl: ts.InterfaceDeclaration): ObjectSchema {
        const props = new Map<string, PropSchema>();
        for (const member of decl.members) {
            if (!ts.isPropertySignature(member) || !member.name) continue;
            const name = ts.isIdentifier(member.name) || ts.isStringLiteral(member.name) ? member.name.text : member.name.getText();
            const nestedTypes: string[] = [];
            let freeMap = false;
            const visit = (node: ts.Node): void => {
                if (ts.isTypeReferenceNode(node)) {
                    const ref = entityName(node.typeName);
                    if (ref.startsWith("inputs.")) nestedTypes.push(ref.slice("inputs.".length));
                }
                if (ts.isTypeLiteralNode(node) && node.members.some(ts.isIndexSignatureDeclaration)) freeMap = true;
                ts.forEachChild(node, visit);
            };
            if (member.type) visit(member.type);
            props.set(name, { nestedTypes, freeMap });
        }
        return { source, props };
    }

    /** Files that may declare the token's Args: `<mod>/<file>.d.ts`, else a case-insensitive match, else `<file>_.d.ts`. */
    private candidateDts(mod: string, file: string): string[] {
        const dir = mod === "index" ? "" : mod;
        const full = path.join(this.root, dir);
        if (!fs.existsSync(full)) return [];
        // A few tokens differ from their file in case (aws:glue/mLTransform:MLTransform -> glue/mltransform.d.ts),
        // and names that clash with the module barrel get "_" (aws:kendra/index:Index -> kendra/index_.d.ts).
        const wanted = [`${file}.d.ts`, `${file}_.d.ts`].map((w) => w.toLowerCase());
        return fs
            .readdirSync(full)
            .filter((f) => wanted.includes(f.toLowerCase()))
            .sort((a, b) => Number(b === `${file}.d.ts`) - Number(a === `${file}.d.ts`))
            .map((f) => path.join(dir, f));
    }

    private parse(file: string): ts.SourceFile | null {
        if (!this.files.has(file)) {
            const full = path.join(this.root, file);
            this.files.set(file, fs.existsSync(full) ? ts.createSourceFile(full, fs.readFileSync(full, "utf8"), ts.ScriptTarget.Latest, false) : null);
        }
        return this.files.get(file) ?? null;
    }
}

function entityName(n: ts.EntityName): string {
    return ts.isIdentifier(n) ? n.text : `${entityName(n.left)}.${n.right.text}`;
}

function unwrapSecret(v: unknown): unknown {
    if (v && typeof v === "object" && !Array.isArray(v) && SECRET_SIG in (v as Record<string, unknown>)) {
        return (v as Record<string, unknown>).value;
    }
    return v === UNKNOWN_SENTINEL ? undefined : v;
}

/** One shared instance: parsing types/input.d.ts takes a few hundred ms, do it once per test process. */
let shared: AwsInputSchemas | undefined;
export function awsInputSchemas(): AwsInputSchemas {
    return (shared ??= new AwsInputSchemas());
}
