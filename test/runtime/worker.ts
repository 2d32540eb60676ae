// The in-runtime tests' entry: the real worker, plus the test-only probe kind (test/kinds/).
export * from '../../worker/index';
export { default } from '../../worker/index';
export { ProbeRoom } from '../kinds/probe/ProbeRoom';
