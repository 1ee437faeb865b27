import { meshProject } from '../../vitest.shared.js';

export default meshProject('l4-rbac');
