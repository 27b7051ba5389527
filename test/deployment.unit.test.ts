import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { ROLES } from "../services/shared/config.js";

const ROOT = join(import.meta.dirname, "..");
const K8S = join(ROOT, "infra/k8s");

/** The Kubernetes kinds the manifests may use, each checked against its schema. */
const MODEL_OF = {
  Deployment: (data: object) => new Deployment(data as never),
  Service: (data: object) => new Service(data as never),
  ConfigMap: (data: object) => new ConfigMap(data as never),
  PodDisruptionBudget: (data: object) => new PodDisruptionBudget(data as never),
  HorizontalPodAutoscaler: (data: object) => new HorizontalPodAutoscaler(data as never),
} as const;

interface Manifest {
  file: string;
  kind: keyof typeof MODEL_OF;
  data: any;
}

const manifests: Manifest[] = readdirSync(K8S)
  .filter((file) => file.endsWith(".yaml"))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(K8S, file), "utf8")).map((document) => {
      const data = document.toJS();
      return { file, kind: data.kind, data };
    }),
  );

describe("Kubernetes manifests (infra/k8s)", () => {
  it("are every one valid against the Kubernetes schema of its kind", () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const { file, kind, data } of manifests) {
      const model = MODEL_OF[kind];
      expect(model, `${file}: unexpected kind ${kind}`).toBeDefined();
      expect(() => model(data).validate(), `${file}: ${kind} ${data.metadata?.name}`).not.toThrow();
    }
  });

  it("the schema check catches a broken manifest", () => {
    const deployment = structuredClone(manifests.find((m) => m.kind === "Deployment")!.data);
    deployment.spec.replicas = "two";
    expect(() => new Deployment(deployment).validate()).toThrow();
  });

  it("run each role as a Deployment of its own, probed on /health and /ready, with resource requests and a disruption budget", () => {
    const deployments = manifests.filter((m) => m.kind === "Deployment");
    const budgets = manifests.filter((m) => m.kind === "PodDisruptionBudget");
    expect(deployments.map((m) => m.data.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === "ZEN_ROLES").value).sort()).toEqual(
      [...ROLES].sort(),
    );
    for (const { data } of deployments) {
      const container = data.spec.template.spec.containers[0];
      expect(container.livenessProbe.httpGet.path).toBe("/health");
      expect(container.readinessProbe.httpGet.path).toBe("/ready");
      expect(container.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      // The process drains its consumers within 35 s of SIGTERM.
      expect(data.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(35);
      const labels = data.spec.selector.matchLabels;
      expect(budgets.some((b) => JSON.stringify(b.data.spec.selector.matchLabels) === JSON.stringify(labels))).toBe(true);
    }
  });

  it("scale the dispatcher and the router on their consumer's backlog", () => {
    const scaled = manifests
      .filter((m) => m.kind === "HorizontalPodAutoscaler")
      .map((m) => ({ target: m.data.spec.scaleTargetRef.name, metric: m.data.spec.metrics.find((x: { type: string }) => x.type === "External")?.external }));
    expect(scaled.map((s) => s.target).sort()).toEqual(["zen-dispatcher", "zen-router"]);
    for (const { metric } of scaled) expect(metric.metric.name).toBe("webhook_consumer_pending");
  });
});

describe("docker-compose.yml", () => {
  const compose = parse(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"));
  const services = Object.entries(compose.services as Record<string, any>);

  it("publishes no host port a local NATS or Postgres holds, and each published port can be moved", () => {
    for (const [name, service] of services) {
      for (const port of service.ports ?? []) {
        expect(String(port), `${name}: ${port}`).toMatch(/^\$\{ZEN_[A-Z_]+_PORT:-\d+\}:\d+$/);
        expect(String(port), `${name}: ${port}`).not.toMatch(/:-(4222|5432|8222|6222)\}/);
      }
    }
  });

  it("checks the health of NATS, Postgres and the platform, starts the platform on healthy dependencies, and restarts what stops", () => {
    const byName = Object.fromEntries(services);
    for (const name of ["nats", "postgres", "zen"]) expect(byName[name].healthcheck?.test, name).toBeDefined();
    expect(byName.zen.depends_on).toEqual({ nats: { condition: "service_healthy" }, postgres: { condition: "service_healthy" } });
    for (const [name, service] of services) expect(service.restart, name).toBe("unless-stopped");
  });

  it("builds from a context that leaves out node_modules, dist and the git history", () => {
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const entry of ["node_modules", "dist", ".git"]) expect(ignored).toContain(entry);
  });
});
