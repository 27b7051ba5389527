declare module "autocannon" {
  const autocannon: (options: Record<string, unknown>) => Promise<any> & { stop?: () => void };
  export default autocannon;
}
