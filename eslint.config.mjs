// Lint rules: typescript-eslint's recommended set over the library, the stack program, tests, bench and examples.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["bin/**", "node_modules/**"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        languageOptions: {
            globals: {
                require: "readonly",
                process: "readonly",
                Buffer: "readonly",
                __dirname: "readonly",
                console: "readonly",
                setTimeout: "readonly",
                clearTimeout: "readonly",
                setInterval: "readonly",
                clearInterval: "readonly",
                module: "readonly",
                URL: "readonly",
            },
        },
        rules: {
            // Dynamic providers are serialized: modules are `require`d inside provider methods on purpose.
            "@typescript-eslint/no-require-imports": "off",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
            "@typescript-eslint/no-explicit-any": "error",
            eqeqeq: ["error", "always"],
            "no-constant-condition": ["error", { checkLoops: false }],
        },
    },
    {
        files: ["test/**", "bench/**"],
        languageOptions: {
            globals: { describe: "readonly", it: "readonly", before: "readonly", after: "readonly", beforeEach: "readonly", afterEach: "readonly" },
        },
    },
);
