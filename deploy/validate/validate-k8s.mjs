// Offline validation of the Kubernetes manifests in deploy/k8s (run by scripts/check-deploy.sh).
//
// Every document of every *.yaml / *.yml file in DIR is
//   1. parsed as YAML (multi-document; YAML errors and warnings are failures),
//   2. validated against its Kubernetes or KEDA schema (kubernetes-models' .validate(),
//      the OpenAPI schemas of the API server and of KEDA's CRDs); the RabbitMQ Cluster
//      Operator's RabbitmqCluster has no schema package and gets a structural check instead
//      (checkRabbitmqCluster below),
//   3. cross-checked: namespaces, selectors against pod labels, Service target ports,
//      ConfigMap/Secret references, probes, PodDisruptionBudgets, KEDA targets and
//      queues, broker URLs that name a RabbitmqCluster, and that every object Linkkit
//      needs is there.
// The schema validators accept unknown fields, so a misspelt optional field is not caught
// by 2; the checks of 3 catch it for the fields this deployment relies on.
//
// Usage: node validate-k8s.mjs DIR      exit status 1 on any problem.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { Affinity, ResourceRequirements, Toleration } from "kubernetes-models/v1";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node validate-k8s.mjs DIR");
  process.exit(2);
}

// apiVersion -> module of kubernetes-models with one class per kind.
const MODULES = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
};

// What this deployment is: the subcommand each Deployment runs, its readiness path (see
// deploy/k8s/README.md, "Probes"), and the queue KEDA scales the workers on.
const ADMIN_PORT = 9464;
const COMPONENTS = {
  "linkkit-api": { command: "api", readiness: "/healthz", service: true },
  "linkkit-redirect": { command: "redirect", readiness: "/healthz", service: true },
  "linkkit-fanout": { command: "fanout", readiness: "/readyz", queues: ["linkkit.fanout"] },
  // Senders scale on their own queue first, and on the events fan-out workers hold back for
  // them (LINKKIT_FANOUT_MAX_QUEUED_JOBS keeps the deliveries queue short while they are behind).
  "linkkit-sender": { command: "sender", readiness: "/readyz", queues: ["linkkit.deliveries", "linkkit.fanout"] },
};
const SUBCOMMANDS = new Set(["api", "redirect", "fanout", "sender", "migrate"]);
const ENV_NAME = /^(LINKKIT_[A-Z0-9_]+|RUST_LOG)$/;

const problems = [];
const fail = (where, msg) => problems.push(`${where}: ${msg}`);

// RabbitmqCluster (rabbitmq.com/v1beta1, the RabbitMQ Cluster Operator's): no schema
// package, so its structure is checked here. Field names against the operator's CRD (the
// API server drops unknown ones), types, the Kubernetes types it embeds against their own
// schemas, and a node count quorum queues can work with. Throws like Model.validate().
const RMQ_FIELDS = {
  spec: ["replicas", "image", "imagePullSecrets", "service", "persistence", "resources", "affinity",
    "tolerations", "rabbitmq", "tls", "override", "skipPostDeploySteps", "terminationGracePeriodSeconds",
    "delayStartSeconds", "secretBackend", "autoEnableAllFeatureFlags"],
  "spec.service": ["type", "annotations", "ipFamilyPolicy"],
  "spec.persistence": ["storageClassName", "storage"],
  "spec.rabbitmq": ["additionalPlugins", "additionalConfig", "advancedConfig", "envConfig", "erlangInetConfig"],
};
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const isMapping = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
function checkRabbitmqCluster(obj) {
  const errors = [];
  if (!isMapping(obj.spec)) throw new Error("no spec");
  for (const [field, allowed] of Object.entries(RMQ_FIELDS)) {
    const node = field.split(".").reduce((o, k) => o?.[k], obj);
    if (node === undefined) continue;
    if (!isMapping(node)) { errors.push(`${field} is not a mapping`); continue; }
    for (const k of Object.keys(node)) if (!allowed.includes(k)) errors.push(`unknown field ${field}.${k}`);
  }
  const { spec } = obj;
  // A quorum queue needs a majority of its replicas: 3 nodes survive the loss of one, and
  // an even count survives no more failures than the odd count below it.
  const replicasOk = Number.isInteger(spec.replicas) && spec.replicas >= 3 && spec.replicas % 2 === 1;
  if (!replicasOk)
    errors.push(`replicas ${spec.replicas ?? "not set (the operator's default is 1)"}: expected an odd number, at least 3, for quorum queues`);
  if (spec.image !== undefined && (typeof spec.image !== "string" || spec.image === "")) errors.push("image is not a string");
  const storage = spec.persistence?.storage;
  if (storage !== undefined && !QUANTITY.test(String(storage))) errors.push(`persistence.storage ${storage} is not a quantity`);
  const serviceType = spec.service?.type;
  if (serviceType !== undefined && !["ClusterIP", "LoadBalancer", "NodePort"].includes(serviceType))
    errors.push(`service.type ${serviceType}`);
  const embedded = [["resources", ResourceRequirements], ["affinity", Affinity]];
  if (spec.tolerations !== undefined) {
    if (!Array.isArray(spec.tolerations)) errors.push("tolerations is not a list");
    else spec.tolerations.forEach((t, i) => embedded.push([`tolerations[${i}]`, Toleration, t]));
  }
  for (const [field, Model, value = spec[field]] of embedded) {
    if (value === undefined) continue;
    try { new Model(value).validate(); } catch (e) { errors.push(`${field}: ${e.message}`); }
  }
  const rmq = spec.rabbitmq || {};
  const plugins = rmq.additionalPlugins;
  if (plugins !== undefined && (!Array.isArray(plugins) || plugins.some((p) => typeof p !== "string" || !/^\w+$/.test(p))))
    errors.push("rabbitmq.additionalPlugins is not a list of plugin names");
  const config = rmq.additionalConfig;
  if (config !== undefined) {
    if (typeof config !== "string") errors.push("rabbitmq.additionalConfig is not a string");
    else {
      if (config.length > 2000) errors.push(`rabbitmq.additionalConfig has ${config.length} characters, the CRD allows 2000`);
      for (const line of config.split("\n").map((l) => l.trim()))
        if (line && !line.startsWith("#") && !/^[A-Za-z0-9_.$-]+\s*=\s*\S/.test(line))
          errors.push(`rabbitmq.additionalConfig line "${line}" is not "key = value"`);
      const size = /^\s*quorum_queue\.continuous_membership_reconciliation\.target_group_size\s*=\s*(\S+)\s*$/m.exec(config);
      if (size && replicasOk && Number(size[1]) !== spec.replicas)
        errors.push(`rabbitmq.additionalConfig: quorum queue target_group_size ${size[1]}, but ${spec.replicas} replicas`);
    }
  }
  if (errors.length) throw new Error(errors.join("; "));
}
// Kinds validated by a function of this file rather than a model.
const STRUCTURAL = { "rabbitmq.com/v1beta1": { RabbitmqCluster: checkRabbitmqCluster } };

// ---- 1 + 2: parse and validate against the schemas ------------------------------------
const modules = {};
const load = async (apiVersion) => {
  if (!(apiVersion in modules)) modules[apiVersion] = MODULES[apiVersion] ? await import(MODULES[apiVersion]) : null;
  return modules[apiVersion];
};

const objects = [];
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
if (files.length === 0) fail(dir, "no manifests");
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), "utf8"), { prettyErrors: true });
  for (const [i, doc] of docs.entries()) {
    const where = `${file}#${i}`;
    const issues = [...doc.errors, ...doc.warnings];
    for (const e of issues) fail(where, `YAML: ${e.message.trim().replace(/\s*\n\s*/g, " ")}`);
    if (issues.length) continue;
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue; // empty document (comments only)
    if (typeof obj !== "object" || Array.isArray(obj)) { fail(where, "not a mapping"); continue; }
    const structural = STRUCTURAL[obj.apiVersion]?.[obj.kind];
    const mod = structural ? null : await load(obj.apiVersion);
    if (!structural && !mod) { fail(where, `no model for apiVersion ${obj.apiVersion}`); continue; }
    const Model = mod && mod[obj.kind];
    if (!structural && typeof Model !== "function") { fail(where, `no model for ${obj.apiVersion} ${obj.kind}`); continue; }
    const name = obj.metadata && obj.metadata.name;
    if (!name) { fail(where, `${obj.kind} without metadata.name`); continue; }
    try {
      if (structural) structural(obj);
      else new Model(obj).validate();
    } catch (e) {
      fail(where, `${obj.kind} ${name}: ${e.message}`);
      continue;
    }
    objects.push({ where: `${where} ${obj.kind} ${name}`, file, obj });
  }
}

// ---- 3: cross-references ------------------------------------------------------------
const byKind = (kind) => objects.filter((o) => o.obj.kind === kind);
const named = (kind, name) => byKind(kind).find((o) => o.obj.metadata.name === name);
const subset = (a, b) => Object.keys(a || {}).length > 0 && Object.entries(a).every(([k, v]) => b && b[k] === v);
const podLabels = (d) => d.obj.spec.template.metadata.labels;
const namespaces = new Set(byKind("Namespace").map((o) => o.obj.metadata.name));
const keys = (o) => Object.keys({ ...o.obj.data, ...o.obj.stringData });

// Names must be unique per kind and namespace.
const seen = new Set();
for (const { where, obj } of objects) {
  const id = `${obj.kind}/${obj.metadata.namespace || ""}/${obj.metadata.name}`;
  if (seen.has(id)) fail(where, "defined twice");
  seen.add(id);
}

for (const o of objects) {
  const { where, obj } = o;
  if (obj.kind !== "Namespace" && !namespaces.has(obj.metadata.namespace))
    fail(where, `namespace ${obj.metadata.namespace} is not defined here`);

  if ((obj.kind === "ConfigMap" || obj.kind === "Secret") && /^linkkit-(config|secrets)/.test(obj.metadata.name))
    for (const k of keys(o)) if (!ENV_NAME.test(k)) fail(where, `unexpected variable ${k}`);

  if (obj.kind === "Deployment" || obj.kind === "Job") {
    const pod = obj.spec.template;
    if (obj.kind === "Deployment" && !subset(obj.spec.selector.matchLabels, pod.metadata.labels))
      fail(where, "selector does not match the pod labels");
    if (pod.spec.securityContext?.runAsNonRoot !== true) fail(where, "pod does not set runAsNonRoot");
    const want = COMPONENTS[obj.metadata.name];
    for (const c of pod.spec.containers) {
      const cmd = [...(c.command || []), ...(c.args || [])];
      if (cmd[0] !== "linkkit" || !SUBCOMMANDS.has(cmd[1]) || cmd.length !== 2)
        fail(where, `container ${c.name} runs ${JSON.stringify(cmd)}`);
      else if (want && cmd[1] !== want.command) fail(where, `container ${c.name} runs linkkit ${cmd[1]}, not ${want.command}`);
      for (const ef of c.envFrom || []) {
        if (ef.configMapRef && !named("ConfigMap", ef.configMapRef.name)) fail(where, `ConfigMap ${ef.configMapRef.name} missing`);
        if (ef.secretRef && !named("Secret", ef.secretRef.name)) fail(where, `Secret ${ef.secretRef.name} missing`);
      }
      if (obj.kind !== "Deployment") continue;
      const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
      const portOf = (p) => (typeof p === "string" ? ports.get(p) : p);
      const probes = [
        ["livenessProbe", "/healthz"],
        ["readinessProbe", want ? want.readiness : null],
      ];
      for (const [probeName, wantPath] of probes) {
        const probe = c[probeName];
        if (!probe || !probe.httpGet) { fail(where, `${c.name}: no HTTP ${probeName}`); continue; }
        if (portOf(probe.httpGet.port) !== ADMIN_PORT) fail(where, `${c.name}: ${probeName} not on the admin port ${ADMIN_PORT}`);
        if (wantPath ? probe.httpGet.path !== wantPath : !["/healthz", "/readyz"].includes(probe.httpGet.path))
          fail(where, `${c.name}: ${probeName} path ${probe.httpGet.path}, expected ${wantPath || "/healthz or /readyz"}`);
      }
      const ann = pod.metadata.annotations || {};
      if (ann["prometheus.io/scrape"] !== "true" || ann["prometheus.io/port"] !== String(ADMIN_PORT))
        fail(where, "prometheus.io/scrape and prometheus.io/port annotations missing");
    }
  }

  if (obj.kind === "Service") {
    const targets = byKind("Deployment").filter((d) => subset(obj.spec.selector, podLabels(d)));
    if (targets.length !== 1) { fail(where, `selector matches ${targets.length} Deployments, expected 1`); continue; }
    const names = new Set(targets[0].obj.spec.template.spec.containers.flatMap((c) => (c.ports || []).map((p) => p.name)));
    for (const p of obj.spec.ports)
      if (typeof p.targetPort === "string" && !names.has(p.targetPort)) fail(where, `targetPort ${p.targetPort} is not a container port`);
  }

  if (obj.kind === "PodDisruptionBudget") {
    const targets = byKind("Deployment").filter((d) => subset(obj.spec.selector.matchLabels, podLabels(d)));
    if (targets.length !== 1) { fail(where, `selector matches ${targets.length} Deployments, expected 1`); continue; }
    // A budget that allows no voluntary disruption blocks every node drain.
    const { maxUnavailable, minAvailable } = obj.spec;
    if ((maxUnavailable === undefined) === (minAvailable === undefined)) fail(where, "set exactly one of maxUnavailable, minAvailable");
    if (maxUnavailable !== undefined && (maxUnavailable === 0 || maxUnavailable === "0%")) fail(where, "maxUnavailable 0 blocks every drain");
    if (typeof minAvailable === "number") {
      const so = byKind("ScaledObject").find((s) => s.obj.spec.scaleTargetRef.name === targets[0].obj.metadata.name);
      const least = so ? so.obj.spec.minReplicaCount ?? 0 : targets[0].obj.spec.replicas ?? 1;
      if (minAvailable >= least) fail(where, `minAvailable ${minAvailable} with ${least} replicas blocks every drain`);
    }
  }

  if (obj.kind === "ScaledObject") {
    const targetName = obj.spec.scaleTargetRef.name;
    const target = named("Deployment", targetName);
    if (!target) fail(where, `scale target ${targetName} missing`);
    else if (target.obj.spec.replicas !== undefined) fail(where, `${targetName} sets replicas; the ScaledObject owns them`);
    const want = COMPONENTS[targetName];
    if ((obj.spec.minReplicaCount ?? 0) < 1) fail(where, "minReplicaCount below 1: no consumer while the queue is empty");
    if (want && !obj.spec.triggers.some((t) => t.metadata && t.metadata.queueName === want.queues[0]))
      fail(where, `no trigger on queue ${want.queues[0]}`);
    for (const t of obj.spec.triggers) {
      if (t.type !== "rabbitmq") { fail(where, `trigger ${t.type}, expected rabbitmq`); continue; }
      if (!want || !want.queues.includes(t.metadata.queueName))
        fail(where, `queue ${t.metadata.queueName}, expected one of ${want && want.queues.join(", ")}`);
      if (t.metadata.mode !== "QueueLength" || !/^[1-9][0-9]*$/.test(String(t.metadata.value)))
        fail(where, `mode ${t.metadata.mode} value ${t.metadata.value}: expected QueueLength and a positive integer string`);
      if (!t.authenticationRef || !named("TriggerAuthentication", t.authenticationRef.name))
        fail(where, "authenticationRef missing or not defined here");
    }
  }

  if (obj.kind === "TriggerAuthentication") {
    for (const ref of obj.spec.secretTargetRef || []) {
      const s = named("Secret", ref.name);
      if (!s) fail(where, `Secret ${ref.name} missing`);
      else if (!keys(s).includes(ref.key)) fail(where, `Secret ${ref.name} has no key ${ref.key}`);
    }
  }

  if (obj.kind === "RabbitmqCluster") {
    // The operator names what it creates after the cluster; none may be defined here too.
    const n = obj.metadata.name;
    const children = [["Service", n], ["Service", `${n}-nodes`], ["Secret", `${n}-default-user`],
      ["Secret", `${n}-erlang-cookie`], ["StatefulSet", `${n}-server`], ["ConfigMap", `${n}-server-conf`],
      ["ConfigMap", `${n}-plugins-conf`], ["ServiceAccount", `${n}-server`]];
    for (const [kind, child] of children)
      if (named(kind, child)) fail(where, `the operator creates ${kind} ${child}, which is also defined here`);
  }
}

// Broker URLs: LINKKIT_AMQP_URL (a comma-separated list) and the URL KEDA reads. One that
// names the Services of a RabbitmqCluster defined here, its client Service
// (<name>[.<namespace>[.svc...]]) or a pod through the headless one
// (<name>-server-<i>.<name>-nodes[.<namespace>[.svc...]]), must match the cluster's name,
// namespace and replicas; and Linkkit on such a cluster declares quorum queues.
const clusters = byKind("RabbitmqCluster").map((o) => o.obj);
const value = (o, k) => o.obj.stringData?.[k] ??
  (o.obj.data?.[k] === undefined ? undefined : o.obj.kind === "Secret" ? Buffer.from(o.obj.data[k], "base64").toString() : o.obj.data[k]);
const linkkitEnv = objects.filter((o) => ["ConfigMap", "Secret"].includes(o.obj.kind) && /^linkkit-(config|secrets)$/.test(o.obj.metadata.name));
const queueTypes = linkkitEnv.map((o) => value(o, "LINKKIT_QUEUE_TYPE")).filter((v) => v !== undefined);
for (const t of queueTypes) if (!["classic", "quorum"].includes(t)) fail("manifests", `LINKKIT_QUEUE_TYPE ${t}, expected classic or quorum`);
const brokerUrls = [];
for (const o of linkkitEnv)
  if (value(o, "LINKKIT_AMQP_URL") !== undefined) brokerUrls.push({ o, key: "LINKKIT_AMQP_URL", linkkit: true });
for (const t of byKind("TriggerAuthentication"))
  for (const ref of t.obj.spec.secretTargetRef || [])
    if (ref.parameter === "host" && named("Secret", ref.name)) brokerUrls.push({ o: named("Secret", ref.name), key: ref.key, linkkit: false });
const SVC = "(?:\\.([a-z0-9-]+)(?:\\.svc(?:\\.cluster\\.local)?)?)?";
const POD_HOST = new RegExp(`^([a-z0-9-]+)-server-([0-9]+)\\.([a-z0-9-]+)-nodes${SVC}$`);
const SERVICE_HOST = new RegExp(`^([a-z0-9-]+)${SVC}$`);
for (const { o, key, linkkit } of brokerUrls) {
  const where = `${o.where} ${key}`;
  const refs = new Set();
  for (const u of value(o, key).split(",").map((x) => x.trim())) {
    let url;
    try { url = new URL(u); } catch { fail(where, `not a URL: ${u}`); continue; }
    if (url.protocol !== "amqp:" && url.protocol !== "amqps:") { fail(where, `${url.protocol} URL, expected amqp: or amqps:`); continue; }
    const host = url.hostname.toLowerCase();
    const pod = POD_HOST.exec(host);
    const service = pod ? null : SERVICE_HOST.exec(host);
    let name, namespace;
    if (pod) {
      [, name, , , namespace] = pod;
      if (pod[1] !== pod[3]) { fail(where, `${host}: the pods of ${pod[1]} are under ${pod[1]}-nodes`); continue; }
    } else if (service && clusters.some((c) => c.metadata.name === service[1])) {
      [, name, namespace] = service;
    } else {
      refs.add("");
      continue;
    }
    refs.add(name);
    namespace = namespace || o.obj.metadata.namespace;
    const cluster = clusters.find((c) => c.metadata.name === name && c.metadata.namespace === namespace);
    if (!cluster) {
      const elsewhere = clusters.find((c) => c.metadata.name === name);
      fail(where, elsewhere ? `${host}: RabbitmqCluster ${name} is in namespace ${elsewhere.metadata.namespace}, not ${namespace}`
        : `${host}: no RabbitmqCluster ${name} is defined here`);
      continue;
    }
    if (pod && Number(pod[2]) >= cluster.spec.replicas) fail(where, `${host}: ${name} has ${cluster.spec.replicas} pods, 0 to ${cluster.spec.replicas - 1}`);
    const port = url.protocol === "amqps:" ? "5671" : "5672";
    if (url.port && url.port !== port) fail(where, `${host}: port ${url.port}, the cluster listens on ${port}`);
  }
  const names = [...refs].filter(Boolean);
  if (refs.size > 1) fail(where, `lists brokers of different clusters (${[...refs].map((n) => n || "other").join(", ")})`);
  if (linkkit && names.length && !queueTypes.includes("quorum"))
    fail(where, `names RabbitmqCluster ${names[0]}: set LINKKIT_QUEUE_TYPE to quorum in linkkit-config`);
}

// Everything a Linkkit deployment needs.
const REQUIRED = [
  ["Namespace", ["linkkit"]],
  ["ConfigMap", ["linkkit-config"]],
  ["Secret", ["linkkit-secrets"]],
  ["Job", ["linkkit-migrate"]],
  ["Deployment", Object.keys(COMPONENTS)],
  ["Service", Object.entries(COMPONENTS).filter(([, c]) => c.service).map(([n]) => n)],
  ["ScaledObject", Object.entries(COMPONENTS).filter(([, c]) => c.queue).map(([n]) => n)],
];
for (const [kind, names] of REQUIRED)
  for (const n of names) if (!named(kind, n)) fail("manifests", `${kind} ${n} missing`);
for (const n of Object.keys(COMPONENTS)) {
  const d = named("Deployment", n);
  if (d && !byKind("PodDisruptionBudget").some((p) => subset(p.obj.spec.selector.matchLabels, podLabels(d))))
    fail("manifests", `no PodDisruptionBudget covers Deployment ${n}`);
}

// ---- report -------------------------------------------------------------------------
const counts = {};
for (const { obj } of objects) counts[obj.kind] = (counts[obj.kind] || 0) + 1;
console.log(`${files.length} files, ${objects.length} objects: ` +
  Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", "));
if (problems.length) {
  for (const p of problems) console.log(`  problem: ${p}`);
  process.exit(1);
}
console.log("schemas and cross-references OK");
