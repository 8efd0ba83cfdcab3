// make lint: every object in docker/k8s/*.yaml validated against the
// Kubernetes API schemas (kubernetes-models, pinned in package.json: its
// validators are generated from Kubernetes' own OpenAPI definitions), so a
// wrong type or a missing required field fails CI without a cluster.  Those
// schemas allow unknown fields (the API server drops them, or refuses them
// with kubectl's strict validation), so a misspelt field ("readinesProbe")
// is also looked up, like kubeconform -strict, in the package's type
// declarations: every key must be a property of its object's type.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, "..", "..", "docker", "k8s");

// A bare module specifier's .d.ts, looked up the way node finds packages
// (the packages' "exports" maps do not list their .d.ts files).
function dtsOf(spec, fromDir) {
  for (let d = fromDir; ; d = dirname(d)) {
    const f = join(d, "node_modules", spec.replace(/\.js$/, "") + ".d.ts");
    if (existsSync(f)) return f;
    if (dirname(d) === d) return null;
  }
}

// ---- strict field names from the .d.ts files ----
const typeCache = new Map();
// The interface declared in a .d.ts file: its properties and, for each, the
// .d.ts file of its object type (or of its array element type), if any.
function typeOf(dts) {
  if (typeCache.has(dts)) return typeCache.get(dts);
  const text = readFileSync(dts, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2];
    const file = spec.startsWith(".")
      ? resolve(dirname(dts), spec.replace(/\.js$/, "") + ".d.ts")
      : dtsOf(spec, dirname(dts));
    imports.set(m[1], file);
  }
  const body = text.match(/^export interface \w+[^{]*\{\n([\s\S]*?)^\}/m);
  const props = new Map();
  for (const m of (body ? body[1] : "").matchAll(/^    "([^"]+)"\??: (.+?);?$/gm)) {
    const t = m[2].trim();
    const ref = t.match(/^(?:Array<)?(I\w+)>?$/);
    props.set(m[1], ref && imports.has(ref[1]) ? imports.get(ref[1]) : null);
  }
  const info = { props, found: !!body };
  typeCache.set(dts, info);
  return info;
}

function strict(obj, dts, where, out) {
  if (obj === null || typeof obj !== "object") return;
  if (Array.isArray(obj)) {
    obj.forEach((v, i) => strict(v, dts, `${where}[${i}]`, out));
    return;
  }
  const t = typeOf(dts);
  if (!t.found) return;
  for (const [k, v] of Object.entries(obj)) {
    if (!t.props.has(k)) out.push(`${where}.${k}: unknown field`);
    else if (t.props.get(k)) strict(v, t.props.get(k), `${where}.${k}`, out);
  }
}

// apiVersion -> kubernetes-models module ("apps/v1" -> kubernetes-models/apps/v1;
// the core group's "v1" -> kubernetes-models/v1)
const modulePath = (apiVersion) => `kubernetes-models/${apiVersion}`;

let checked = 0;
const failures = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  const text = readFileSync(join(dir, file), "utf8");
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      failures.push(`${file}: YAML: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const { apiVersion, kind } = obj;
    if (apiVersion === "kustomize.config.k8s.io/v1beta1" && kind === "Kustomization") {
      // not a cluster object: its resources must be the other files here
      for (const r of obj.resources ?? []) {
        try { readFileSync(join(dir, r)); } catch { failures.push(`${file}: resource ${r} missing`); }
      }
      checked++;
      continue;
    }
    let Model;
    try {
      Model = (await import(modulePath(apiVersion)))[kind];
    } catch (e) {
      failures.push(`${file}: unknown apiVersion ${apiVersion} (${e.message})`);
      continue;
    }
    if (!Model) {
      failures.push(`${file}: no kind ${kind} in ${apiVersion}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      failures.push(`${file}: ${apiVersion} ${kind}: ${e.message}`);
      continue;
    }
    const unknown = [];
    const dts = dtsOf(`${modulePath(apiVersion)}/${kind}`, here);
    if (!dts) {
      failures.push(`${file}: no type declarations for ${apiVersion} ${kind}`);
      continue;
    }
    strict(obj, dts, kind, unknown);
    if (unknown.length) {
      failures.push(`${file}: ${unknown.join("; ")}`);
      continue;
    }
    console.log(`ok   ${file}: ${apiVersion} ${kind} ${obj.metadata?.name ?? ""}`);
    checked++;
  }
}
for (const f of failures) console.log(`FAIL ${f}`);
console.log(`k8s_schema: ${checked} passed, ${failures.length} failed`);
process.exit(failures.length || !checked ? 1 : 0);
