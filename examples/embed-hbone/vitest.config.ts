import { meshProject } from '../../vitest.shared.js';

export default meshProject('example-embed-hbone');
